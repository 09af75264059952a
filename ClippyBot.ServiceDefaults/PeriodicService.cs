using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Background work run every interval read from configuration (<see cref="IntervalKey"/>, at least a second). A tick
/// that fails, whatever the exception, is logged and the next tick comes regardless: an unhandled exception in a
/// background service stops the whole host, and a slow neighbour must never take a service down.
/// </summary>
public abstract partial class PeriodicService(IConfiguration configuration, TimeProvider time, Microsoft.Extensions.Logging.ILogger logger) : BackgroundService
{
    /// <summary>The clock the ticks follow (tests shift it).</summary>
    protected TimeProvider Clock => time;

    protected abstract string IntervalKey { get; }

    protected abstract TimeSpan DefaultInterval { get; }

    protected abstract Task RunOnceAsync(CancellationToken ct);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = configuration.GetValue(IntervalKey, DefaultInterval);
        if (interval < TimeSpan.FromSeconds(1))
        {
            throw new InvalidOperationException($"{IntervalKey} must be at least a second.");
        }
        using var timer = new PeriodicTimer(interval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Any failure of one tick is logged; the service keeps running.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogTickFailed(logger, GetType().Name, e.GetType().Name);
            }
        }
    }

    [Microsoft.Extensions.Logging.LoggerMessage(Microsoft.Extensions.Logging.LogLevel.Warning, "{Service}: this round failed ({Error}); the next one follows on schedule")]
    private static partial void LogTickFailed(Microsoft.Extensions.Logging.ILogger logger, string service, string error);
}
