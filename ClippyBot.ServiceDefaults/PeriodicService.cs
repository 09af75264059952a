using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Background work run every interval read from configuration (<see cref="IntervalKey"/>, at least a second). A tick
/// that fails is the subclass's to log; the next tick comes regardless.
/// </summary>
public abstract class PeriodicService(IConfiguration configuration, TimeProvider time) : BackgroundService
{
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
            await RunOnceAsync(stoppingToken);
        }
    }
}
