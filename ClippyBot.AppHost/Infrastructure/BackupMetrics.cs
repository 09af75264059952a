using System.Diagnostics.Metrics;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// <c>clippybot.backup.*</c>: what an operator alerts on (docs/operations.md has the Prometheus rules) — the last good
/// backup and drill, their size and duration, the WAL archive's lag, and failures. Exported over OTLP to the dashboard
/// (or <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>); the AppHost's own process is where the schedule runs.
/// </summary>
public sealed class BackupMetrics : IDisposable
{
    public const string MeterName = "ClippyBot.Backup";

    private readonly Meter _meter;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _drillFailures;
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Cluster, string Type, int Repository), (long LastSuccess, long Bytes)> _backups = [];
    private readonly Dictionary<string, (long LastSuccess, double Rto, double Rpo, int Passed)> _drills = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (double LagSeconds, long FailedAttempts)> _archives = new(StringComparer.Ordinal);

    public BackupMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _meter = meters.Create(MeterName);
        _duration = _meter.CreateHistogram<double>("clippybot.backup.duration", "s", "How long each backup took.");
        _failures = _meter.CreateCounter<long>("clippybot.backup.failures", "{backup}", "Backups that failed.");
        _drillFailures = _meter.CreateCounter<long>("clippybot.backup.drill.failures", "{drill}", "Restore drills that failed.");
        _meter.CreateObservableGauge("clippybot.backup.last_success", () => Backups(b => b.LastSuccess), "s",
            "Unix time of the last successful backup, per type and repository.");
        _meter.CreateObservableGauge("clippybot.backup.size", () => Backups(b => b.Bytes), "By",
            "Bytes the last backup added to its repository, per type and repository.");
        _meter.CreateObservableGauge("clippybot.backup.wal_archive_lag", () => Archive(a => a.LagSeconds), "s",
            "Seconds since the server last archived a WAL segment (archive_timeout closes one at least every 60 s).");
        _meter.CreateObservableCounter("clippybot.backup.wal_archive_failed_attempts", () => Archive(a => (double)a.FailedAttempts), "{attempt}",
            "Failed archive_command attempts since the server's statistics were reset.");
        _meter.CreateObservableGauge("clippybot.backup.drill.last_success", () => Drill(d => d.LastSuccess), "s", "Unix time of the last passed restore drill.");
        _meter.CreateObservableGauge("clippybot.backup.drill.passed", () => Drill(d => (long)d.Passed), "1", "1 when the last restore drill passed, 0 when it failed.");
        _meter.CreateObservableGauge("clippybot.backup.drill.rto", () => Drill(d => d.Rto), "s", "Restore and start time of the last passed drill.");
        _meter.CreateObservableGauge("clippybot.backup.drill.rpo", () => Drill(d => d.Rpo), "s", "Age of the newest commit the last passed drill restored.");
    }

    public void BackupSucceeded(string cluster, string type, int repository, DateTimeOffset stopped, long bytes, TimeSpan took)
    {
        lock (_gate)
        {
            _backups[(cluster, type, repository)] = (stopped.ToUnixTimeSeconds(), bytes);
        }
        _duration.Record(took.TotalSeconds, new("cluster", cluster), new("type", type), new("repository", repository), new("outcome", "success"));
    }

    /// <summary>What the repositories already hold (after a restart the last success must not read as "never").</summary>
    public void BackupsListed(string cluster, IEnumerable<ClippyBot.Backup.PointInTime.BackupSet> backups)
    {
        ArgumentNullException.ThrowIfNull(backups);
        lock (_gate)
        {
            foreach (var newest in backups.GroupBy(b => (b.Type, b.Repository)).Select(g => g.MaxBy(b => b.Stopped)!))
            {
                if (!_backups.TryGetValue((cluster, newest.Type, newest.Repository), out var known) || known.LastSuccess < newest.Stopped.ToUnixTimeSeconds())
                {
                    _backups[(cluster, newest.Type, newest.Repository)] = (newest.Stopped.ToUnixTimeSeconds(), newest.Bytes);
                }
            }
        }
    }

    /// <summary>The last drill as recorded before a restart: passed at <paramref name="passed"/>, or failing since.</summary>
    public void DrillRecorded(string cluster, DateTimeOffset? passed, bool failing)
    {
        if (passed is null && !failing)
        {
            return; // none yet
        }
        lock (_gate)
        {
            _drills.TryAdd(cluster, (passed?.ToUnixTimeSeconds() ?? 0, double.NaN, double.NaN, failing ? 0 : 1));
        }
    }

    public void BackupFailed(string cluster, string type, int repository, TimeSpan took)
    {
        _failures.Add(1, new KeyValuePair<string, object?>("cluster", cluster), new("type", type), new("repository", repository));
        _duration.Record(took.TotalSeconds, new("cluster", cluster), new("type", type), new("repository", repository), new("outcome", "failure"));
    }

    public void DrillPassed(string cluster, DateTimeOffset at, TimeSpan rto, TimeSpan? rpo)
    {
        lock (_gate)
        {
            _drills[cluster] = (at.ToUnixTimeSeconds(), rto.TotalSeconds, rpo?.TotalSeconds ?? double.NaN, 1);
        }
    }

    public void DrillFailed(string cluster, int repository)
    {
        lock (_gate)
        {
            _drills[cluster] = _drills.TryGetValue(cluster, out var last) ? last with { Passed = 0 } : (0, double.NaN, double.NaN, 0);
        }
        _drillFailures.Add(1, new KeyValuePair<string, object?>("cluster", cluster), new("repository", repository));
    }

    public void ArchiveObserved(string cluster, double lagSeconds, long failedAttempts)
    {
        lock (_gate)
        {
            _archives[cluster] = (lagSeconds, failedAttempts);
        }
    }

    private IEnumerable<Measurement<long>> Backups(Func<(long LastSuccess, long Bytes), long> value)
    {
        lock (_gate)
        {
            return [.. _backups.Select(b => new Measurement<long>(value(b.Value), new("cluster", b.Key.Cluster), new("type", b.Key.Type), new("repository", b.Key.Repository)))];
        }
    }

    private IEnumerable<Measurement<T>> Drill<T>(Func<(long LastSuccess, double Rto, double Rpo, int Passed), T> value)
        where T : struct
    {
        lock (_gate)
        {
            return [.. _drills.Select(d => (d.Key, Value: value(d.Value)))
                .Where(d => !(d.Value is double v && double.IsNaN(v)))
                .Select(d => new Measurement<T>(d.Value, new KeyValuePair<string, object?>("cluster", d.Key)))];
        }
    }

    private IEnumerable<Measurement<double>> Archive(Func<(double LagSeconds, long FailedAttempts), double> value)
    {
        lock (_gate)
        {
            return [.. _archives.Select(a => new Measurement<double>(value(a.Value), new KeyValuePair<string, object?>("cluster", a.Key)))];
        }
    }

    public void Dispose() => _meter.Dispose();
}
