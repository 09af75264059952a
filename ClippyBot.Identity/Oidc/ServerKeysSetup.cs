using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Server;

namespace ClippyBot.Identity.Oidc;

/// <summary>Feeds the key ring into OpenIddict's options, and rebuilds them when the ring changes (rotation).</summary>
internal sealed class ServerKeysSetup(SigningKeyRing ring) : IConfigureOptions<OpenIddictServerOptions>
{
    public void Configure(OpenIddictServerOptions options)
    {
        var keys = ring.Current;
        options.SigningCredentials.Clear();
        foreach (var key in keys.SigningKeys)
        {
            options.SigningCredentials.Add(new SigningCredentials(key, SecurityAlgorithms.EcdsaSha256));
        }
        options.EncryptionCredentials.Clear();
        options.EncryptionCredentials.Add(new EncryptingCredentials(keys.EncryptionKey, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512));
    }
}

internal sealed class ServerKeysChangeTokenSource(SigningKeyRing ring) : IOptionsChangeTokenSource<OpenIddictServerOptions>
{
    public string? Name => Options.DefaultName;

    public IChangeToken GetChangeToken() => ring.GetChangeToken();
}

/// <summary>
/// Identity validates tokens for its own internal APIs with the local server's keys, copied into the validation options
/// when they are built: without this they would keep the keys Identity started with, and refuse every token signed by a
/// key made later (a rotation, or the next scheduled key).
/// </summary>
internal sealed class ValidationKeysChangeTokenSource(SigningKeyRing ring) : IOptionsChangeTokenSource<OpenIddict.Validation.OpenIddictValidationOptions>
{
    public string? Name => Options.DefaultName;

    public IChangeToken GetChangeToken() => ring.GetValidationChangeToken();
}

/// <summary>Re-reads the ring periodically so every replica picks up new keys, and rotates when due.</summary>
internal sealed partial class KeyRingRefreshService(SigningKeyRing ring, TimeProvider time, IOptions<OidcOptions> options, ILogger<KeyRingRefreshService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.KeyRingRefreshInterval, time);
        do
        {
            try
            {
                await ring.RefreshAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // the next tick retries; the current keys stay in use meanwhile
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LogRefreshFailed(ex.GetType().Name);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refreshing the signing key ring failed ({ErrorType}); keeping the current keys")]
    private partial void LogRefreshFailed(string errorType);
}
