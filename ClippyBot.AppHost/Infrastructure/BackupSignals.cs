using ClippyBot.Contracts;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// The AppHost runs the local backups, so it raises their security signals (a failed backup, a failed restore drill, an
/// archive lagging behind the recovery-point promise) into the same Redis view the Api's alert rules read — as its own
/// cache user, which may write only <c>clippybot:signals:apphost:*</c>. Fire and forget: a cache that is not up yet
/// costs the signal (the dashboard and the OTLP backup metrics still show the failure), never the backup.
/// </summary>
public sealed partial class BackupSignals(ReferenceExpression connection, string prefix, TimeProvider time, ILogger<BackupSignals> logger) : IAsyncDisposable
{
    public const string Source = "apphost";

    /// <summary>The recovery-point promise's alarm (docs/operations.md: the Prometheus rule alerts at the same lag).</summary>
    public static readonly TimeSpan LagAlarm = TimeSpan.FromSeconds(180);

    private readonly SemaphoreSlim _connecting = new(1, 1);
    private ConnectionMultiplexer? _redis;

    public void Raise(string name, string cluster, string detail) => _ = RaiseAsync(name, cluster, detail);

    public async Task RaiseAsync(string name, string cluster, string detail)
    {
        try
        {
            var db = (await ConnectAsync()).GetDatabase();
            var signal = SecuritySignalNames.Qualified(Source, name);
            var now = time.GetUtcNow();
            var key = SecuritySignalKeys.BucketKey(prefix, signal, SecuritySignalKeys.MinuteOf(now));
            var samples = SecuritySignalKeys.SamplesKey(prefix, signal);
            var batch = db.CreateBatch();
            var writes = new Task[]
            {
                batch.HashIncrementAsync(key, SecuritySignalKeys.TotalField), batch.HashIncrementAsync(key, cluster),
                batch.KeyExpireAsync(key, SecuritySignalKeys.Retention),
                batch.ListLeftPushAsync(samples, SecuritySignalKeys.Sample(now, cluster, detail.ReplaceLineEndings(" "))),
                batch.ListTrimAsync(samples, 0, SecuritySignalKeys.SamplesKept - 1), batch.KeyExpireAsync(samples, SecuritySignalKeys.Retention),
            };
            batch.Execute();
            await Task.WhenAll(writes);
        }
#pragma warning disable CA1031 // a signal must never fail the backup that raised it
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogNotRaised(logger, name, e.GetType().Name);
        }
    }

    private async Task<ConnectionMultiplexer> ConnectAsync()
    {
        if (_redis is { } ready)
        {
            return ready;
        }
        await _connecting.WaitAsync();
        try
        {
            return _redis ??= await ConnectionMultiplexer.ConnectAsync(await connection.GetValueAsync(default) + ",abortConnect=false");
        }
        finally
        {
            _connecting.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_redis is { } redis)
        {
            await redis.DisposeAsync();
        }
        _connecting.Dispose();
    }

    [LoggerMessage(1, LogLevel.Warning, "Backup signal {Signal} not raised ({Error}); the backups resource and its metrics still show it")]
    private static partial void LogNotRaised(ILogger logger, string signal, string error);
}
