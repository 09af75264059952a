using System.Diagnostics.Metrics;

namespace ClippyBot.ServiceDefaults;

/// <summary>
/// Security counters every service reports through OpenTelemetry (the dashboard's Metrics page shows them), tagged
/// with a low-cardinality <c>reason</c>: authentication failures, authorization denials, rate-limit refusals.
/// </summary>
public sealed class SecurityMetrics : IDisposable
{
    public const string MeterName = "ClippyBot.Security";

    private readonly Meter _meter;
    private readonly Counter<long> _authenticationFailures;
    private readonly Counter<long> _authorizationDenials;
    private readonly Counter<long> _rateLimited;
    private readonly Counter<long> _emails;
    private readonly Counter<long> _credentialsEvaluated;
    private readonly Counter<long> _signals;

    public SecurityMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _meter = meters.Create(MeterName);
        _authenticationFailures = _meter.CreateCounter<long>("clippybot.security.authentication_failures", description: "Requests refused because the caller could not be authenticated.");
        _authorizationDenials = _meter.CreateCounter<long>("clippybot.security.authorization_denials", description: "Authenticated requests refused for lack of permission (403) or membership (404).");
        _rateLimited = _meter.CreateCounter<long>("clippybot.security.rate_limited", description: "Requests refused by a rate limit (429).");
        _credentialsEvaluated = _meter.CreateCounter<long>("clippybot.security.credentials_evaluated", description: "Credential checks (password, one-time code) actually evaluated against an account, by kind; refused-before-evaluation attempts are not counted.");
        _signals = _meter.CreateCounter<long>("clippybot.security.signals", description: "Security signals raised for the alert rules, by qualified signal name (the Prometheus counterpart of the in-app rules).");
        _emails = _meter.CreateCounter<long>("clippybot.security.emails", description: "Security emails (verification, reset, notices) delivered or given up, by template.");
    }

    public void EmailSent(string kind, bool delivered) => _emails.Add(1,
        new KeyValuePair<string, object?>("kind", kind), new KeyValuePair<string, object?>("outcome", delivered ? "delivered" : "failed"));

    /// <summary>Audit signals are tagged by their action's family only (<c>api:audit</c>), so the tag stays low-cardinality.</summary>
    public void SignalRaised(string signal) => _signals.Add(1, new KeyValuePair<string, object?>("signal",
        signal.Contains(":audit:", StringComparison.Ordinal) ? signal[..(signal.IndexOf(":audit:", StringComparison.Ordinal) + 6)] : signal));

    public void CredentialEvaluated(string kind) => _credentialsEvaluated.Add(1, new KeyValuePair<string, object?>("kind", kind));

    public void AuthenticationFailed(string reason) => _authenticationFailures.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void AuthorizationDenied(string reason) => _authorizationDenials.Add(1, new KeyValuePair<string, object?>("reason", reason));

    public void RateLimited(string policy) => _rateLimited.Add(1, new KeyValuePair<string, object?>("policy", policy));

    public void Dispose() => _meter.Dispose();
}
