using Microsoft.Extensions.Options;

namespace ClippyBot.Registry.Metadata;

/// <summary>Seeds the first-party publisher, publishes the first metadata at start, and signs again before anything expires (every replica checks; one signs).</summary>
public sealed partial class MetadataRefresher(IServiceScopeFactory scopes, ClippyBot.ServiceDefaults.Data.MigrationStatus<Data.RegistryDbContext> migrations,
    RegistrySigner signer, IOptions<RegistryOptions> options, TimeProvider time, ILogger<MetadataRefresher> logger) : BackgroundService
{
    // The signer is taken here so that keys not matching the root stop the service at start, not at the first signature.
    private readonly RegistrySigner _signer = signer;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _ = _signer.Root.Version;
        await migrations.WhenCompleted(stoppingToken);
        using var timer = new PeriodicTimer(options.Value.RefreshCheckInterval, time);
        do
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                // First-party bundles may appear while running (the AppHost builds the examples in the background).
                await scope.ServiceProvider.GetRequiredService<Versions.FirstPartySeeding>().SeedAsync(stoppingToken);
                if (await scope.ServiceProvider.GetRequiredService<MetadataPublisher>().RefreshAsync(stoppingToken))
                {
                    LogSigned(logger);
                }
            }
            catch (Exception e) when (e is Npgsql.NpgsqlException or InvalidOperationException or TimeoutException)
            {
                // The next tick tries again; clients keep the metadata they have until it expires.
                LogFailed(logger, e.GetType().Name, e.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(1, LogLevel.Information, "Registry metadata signed again before it expires")]
    private static partial void LogSigned(ILogger logger);

    [LoggerMessage(2, LogLevel.Warning, "Refreshing the registry metadata failed ({Error}: {Message}); retrying at the next check")]
    private static partial void LogFailed(ILogger logger, string error, string message);
}
