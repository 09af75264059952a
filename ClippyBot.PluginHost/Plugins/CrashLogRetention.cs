using ClippyBot.PluginHost.Data;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.PluginHost.Plugins;

/// <summary>Keeps the crash log bounded: entries older than <see cref="QuarantineOptions.CrashLogRetention"/> are deleted hourly.</summary>
public sealed partial class CrashLogRetention(IServiceScopeFactory scopes, IOptions<QuarantineOptions> options, TimeProvider time,
    MigrationStatus<PluginsDbContext> migrations, ILogger<CrashLogRetention> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await migrations.WhenCompleted(stoppingToken);
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1), time);
        do
        {
            try
            {
                var deleted = await PruneAsync(stoppingToken);
                if (deleted > 0)
                {
                    LogPruned(deleted);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(e.GetType().Name);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    public async Task<int> PruneAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var cutoff = time.GetUtcNow() - options.Value.CrashLogRetention;
        return await scope.ServiceProvider.GetRequiredService<PluginsDbContext>().CrashLog.Where(c => c.At < cutoff).ExecuteDeleteAsync(ct);
    }

    [LoggerMessage(LogLevel.Information, "Crash log: {Count} entries past retention deleted")]
    private partial void LogPruned(int count);

    [LoggerMessage(LogLevel.Warning, "Crash log pruning failed ({Error}); next try in an hour")]
    private partial void LogFailed(string error);
}
