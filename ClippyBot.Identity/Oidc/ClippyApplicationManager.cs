using ClippyBot.Identity.Crypto;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// OpenIddict's application manager with two changes that decide token throughput:
/// <list type="bullet">
/// <item>Client secrets are random 256-bit values: stored as an HMAC under a server key and compared in constant
/// time, instead of PBKDF2 (which adds nothing for random secrets and costs milliseconds per request).</item>
/// <item>Lookups by client id are served from a process-wide cache for <see cref="ClientCacheKeys.Lifetime"/> (OpenIddict's own
/// entity cache lives only as long as one request), evicted at once on local changes; other replicas see a change
/// within that lifetime. Unknown client ids are cached as unknown too, so "no such client" costs what "wrong secret"
/// costs and the response time does not tell which client ids exist.</item>
/// </list>
/// </summary>
public sealed class ClippyApplicationManager<TApplication>(
    IOpenIddictApplicationCache<TApplication> cache,
    ILogger<OpenIddictApplicationManager<TApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TApplication> store,
    SecretHasher hasher,
    ClientLookupCache applications) : OpenIddictApplicationManager<TApplication>(cache, logger, options, store)
    where TApplication : class
{
    private static readonly object Unknown = new();

    public override async ValueTask<TApplication?> FindByClientIdAsync(string identifier, CancellationToken cancellationToken = default)
    {
        // No client id is longer; a longer one is never looked up or remembered.
        if (identifier is null || identifier.Length > ParameterBounds.ClientId)
        {
            return null;
        }
        if (applications.TryGetValue(ClientCacheKeys.Application(identifier), out object? cached))
        {
            return cached as TApplication;
        }
        var application = await base.FindByClientIdAsync(identifier, cancellationToken);
        applications.Set(ClientCacheKeys.Application(identifier), (object?)application ?? Unknown);
        return application;
    }

    public override async ValueTask UpdateAsync(TApplication application, CancellationToken cancellationToken = default)
    {
        await base.UpdateAsync(application, cancellationToken);
        await EvictAsync(application, cancellationToken);
    }

    public override async ValueTask DeleteAsync(TApplication application, CancellationToken cancellationToken = default)
    {
        await EvictAsync(application, cancellationToken);
        await base.DeleteAsync(application, cancellationToken);
    }

    protected override ValueTask<string> ObfuscateClientSecretAsync(string secret, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(hasher.Hash(secret));

    protected override ValueTask<bool> ValidateClientSecretAsync(string secret, string comparand, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(hasher.Verify(secret, comparand));

    // Every creation path ends in one of these two; a cached "unknown" for the new client id must go.
    public override async ValueTask CreateAsync(TApplication application, CancellationToken cancellationToken = default)
    {
        await base.CreateAsync(application, cancellationToken);
        await EvictAsync(application, cancellationToken);
    }

    public override async ValueTask CreateAsync(TApplication application, string? secret, CancellationToken cancellationToken = default)
    {
        await base.CreateAsync(application, secret, cancellationToken);
        await EvictAsync(application, cancellationToken);
    }

    private async ValueTask EvictAsync(TApplication application, CancellationToken ct)
    {
        if (await GetClientIdAsync(application, ct) is { } clientId)
        {
            applications.Remove(ClientCacheKeys.Application(clientId));
            applications.Remove(ClientCacheKeys.Credentials(clientId));
        }
    }
}
