using ClippyBot.Identity.Data;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// Deletes token and authorization rows that can no longer matter: created before the longest token lifetime ago
/// and no longer valid. Redeemed refresh tokens are kept that long on purpose — they are what detects reuse.
/// </summary>
public sealed partial class TokenPruningService(
    IServiceScopeFactory scopes, MigrationStatus<IdentityDataContext> migrations, TimeProvider time,
    IOptions<OidcOptions> options, ILogger<TokenPruningService> logger) : BackgroundService
{
    public async Task<(long Tokens, long Authorizations)> PruneAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var threshold = time.GetUtcNow() - options.Value.SigningKeyRetention;
        var tokens = await scope.ServiceProvider.GetRequiredService<IOpenIddictTokenManager>().PruneAsync(threshold, ct);
        var authorizations = await scope.ServiceProvider.GetRequiredService<IOpenIddictAuthorizationManager>().PruneAsync(threshold, ct);
        LogPruned(tokens, authorizations);
        return (tokens, authorizations);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await migrations.WhenCompleted(stoppingToken);
        using var timer = new PeriodicTimer(options.Value.PruneInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await PruneAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // the next tick retries
            catch (Exception ex)
#pragma warning restore CA1031
            {
                LogFailed(ex.GetType().Name);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Pruned {Tokens} tokens and {Authorizations} authorizations")]
    private partial void LogPruned(long tokens, long authorizations);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Token pruning failed ({ErrorType}); retrying at the next interval")]
    private partial void LogFailed(string errorType);
}
