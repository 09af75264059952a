using System.Diagnostics.Metrics;

namespace ClippyBot.Api.Detection;

/// <summary>
/// The alerts as metrics, for the dashboard and for an external Prometheus (the Api's <c>/metrics</c>):
/// <c>clippybot.security.alerts.firing</c> (open alerts by rule and severity, the same on every replica — aggregate with
/// max) and <c>clippybot.security.alerts.raised</c> (episodes opened, counted by the replica that opened them).
/// </summary>
public sealed class DetectionMetrics : IDisposable
{
    public const string MeterName = "ClippyBot.Detection";

    private readonly Meter _meter;
    private readonly Counter<long> _raised;

    public sealed record FiringCount(string Rule, string Severity, int Count);

    public DetectionMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _meter = meters.Create(MeterName);
        _raised = _meter.CreateCounter<long>("clippybot.security.alerts.raised", "{alert}", "Security alerts opened (one per episode of a rule firing).");
        _meter.CreateObservableGauge("clippybot.security.alerts.firing", () => Firing.Select(f =>
            new Measurement<int>(f.Count, new KeyValuePair<string, object?>("rule", f.Rule), new KeyValuePair<string, object?>("severity", f.Severity))),
            "{alert}", "Security alerts open now, by rule and severity.");
    }

    /// <summary>Set by the evaluator after each round.</summary>
    public IReadOnlyList<FiringCount> Firing { get; set; } = [];

    public void Raised(string rule, string severity) => _raised.Add(1,
        new KeyValuePair<string, object?>("rule", rule), new KeyValuePair<string, object?>("severity", severity));

    public void Dispose() => _meter.Dispose();
}
