using ClippyBot.Identity.Crypto;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// Client secrets are random 256-bit values: stored as an HMAC under a server key and compared in constant time,
/// instead of OpenIddict's PBKDF2 (which adds nothing for random secrets and limits token throughput).
/// </summary>
public sealed class ClippyApplicationManager<TApplication>(
    IOpenIddictApplicationCache<TApplication> cache,
    ILogger<OpenIddictApplicationManager<TApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TApplication> store,
    SecretHasher hasher) : OpenIddictApplicationManager<TApplication>(cache, logger, options, store)
    where TApplication : class
{
    protected override ValueTask<string> ObfuscateClientSecretAsync(string secret, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(hasher.Hash(secret));

    protected override ValueTask<bool> ValidateClientSecretAsync(string secret, string comparand, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(hasher.Verify(secret, comparand));
}
