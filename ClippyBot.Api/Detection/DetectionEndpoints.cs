using System.Text.Json;
using ClippyBot.Api.ApiKeys;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Containment;
using ClippyBot.Api.Data;
using ClippyBot.Contracts;
using ClippyBot.ServiceDefaults.Detection;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace ClippyBot.Api.Detection;

/// <summary>
/// Seed §4.2 detection: alert rules over the security signals every service raises (<see cref="AlertEvaluator"/>), the
/// alerts for platform administrators (<c>/api/admin/alerts</c>), and every metric for an external Prometheus at
/// <c>/metrics</c> (a client-credentials caller with scope <see cref="ApiScopes.Metrics"/>; docs/operations.md has the
/// equivalent Prometheus rules).
/// </summary>
public static class DetectionEndpoints
{
    public const string MetricsPolicy = "metrics-reader";
    public const string MetricsPath = "/metrics";
    public const int MaxPageSize = 200;

    public sealed record AlertSummary(Guid Id, string Rule, string Severity, string Subject, string Status, DateTimeOffset FirstSeen, DateTimeOffset LastSeen,
        DateTimeOffset? ResolvedAt, long Count, long PeakWindowCount, long Threshold, int WindowMinutes, DateTimeOffset? MailedAt);

    public sealed record AlertPage(IReadOnlyList<AlertSummary> Alerts, Guid? NextBefore);

    public sealed record AlertDetail(AlertSummary Alert, string Description, IReadOnlyList<AlertSubject> Subjects, IReadOnlyList<AlertSample> Samples,
        IReadOnlyList<AuditEndpoints.AuditEntryResponse> AuditEntries);

    public sealed record RuleResponse(string Name, IReadOnlyList<string> Signals, long Threshold, int WindowMinutes, bool PerSubject, double BaselineFactor,
        string Severity, string Description, bool Enabled, int QuietMinutes);

    /// <summary>Filters of the alert list (query string).</summary>
    public sealed record AlertQuery(string? Status, string? Rule, Guid? Before, int? PageSize);

    public static IHostApplicationBuilder AddDetection(this IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(DetectionOptions.SectionName);
        builder.Services.AddOptions<DetectionOptions>().Configure(o => o.Bind(section))
            .Validate(o => o.Problem() is null, "Detection rules are invalid (see DetectionOptions.Problem).").ValidateOnStart();
        builder.Services.AddSingleton<DetectionMetrics>();
        builder.Services.AddSingleton<PluginSignalRelay>();
        builder.Services.AddScoped<AlertMail>();
        builder.Services.AddSingleton<AlertEvaluator>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<AlertEvaluator>());
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(DetectionMetrics.MeterName).AddPrometheusExporter());
        builder.Services.AddAuthorizationBuilder().AddPolicy(MetricsPolicy, policy => policy.RequireAuthenticatedUser()
            .RequireAssertion(c => !c.User.IsApiKey() && c.User.FindAll("scope")
                .Any(s => s.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(ApiScopes.Metrics, StringComparer.Ordinal))));
        return builder;
    }

    public static IEndpointRouteBuilder MapDetectionApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/api/admin").WithTags("Detection").RequireAuthorization(ContainmentEndpoints.PolicyName)
            .RequireRateLimiting(RateLimiting.RateLimitingExtensions.SensitivePolicy);
        admin.MapGet("/alerts", ListAlertsAsync);
        admin.MapGet("/alerts/{alertId:guid}", GetAlertAsync);
        admin.MapGet("/detection/rules", ListRules);
        app.MapPrometheusScrapingEndpoint(MetricsPath).RequireAuthorization(MetricsPolicy).ExcludeFromDescription();
        return app;
    }

    private static async Task<Results<Ok<AlertPage>, ValidationProblem>> ListAlertsAsync(ApiDbContext db, [AsParameters] AlertQuery query, CancellationToken ct)
    {
        var size = query.PageSize ?? 50;
        var errors = new Dictionary<string, string[]>();
        if (size is < 1 or > MaxPageSize)
        {
            errors["pageSize"] = [$"Use 1–{MaxPageSize}."];
        }
        if (query.Status is { Length: > 0 } status && status is not ("firing" or "resolved"))
        {
            errors["status"] = ["Use firing or resolved."];
        }
        if (query.Rule is { Length: > SecurityAlert.RuleLength })
        {
            errors["rule"] = [$"At most {SecurityAlert.RuleLength} characters."];
        }
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }
        var alerts = db.SecurityAlerts.AsNoTracking();
        alerts = query.Status switch
        {
            "firing" => alerts.Where(a => a.ResolvedAt == null),
            "resolved" => alerts.Where(a => a.ResolvedAt != null),
            _ => alerts,
        };
        if (query.Rule is { Length: > 0 } rule)
        {
            alerts = alerts.Where(a => a.Rule == rule);
        }
        if (query.Before is { } before)
        {
            alerts = alerts.Where(a => a.Id.CompareTo(before) < 0);
        }
        var page = await alerts.OrderByDescending(a => a.Id).Take(size + 1).ToListAsync(ct);
        var more = page.Count > size;
        var summaries = page.Take(size).Select(Summary).ToList();
        return TypedResults.Ok(new AlertPage(summaries, more ? summaries[^1].Id : null));
    }

    private static async Task<Results<Ok<AlertDetail>, ProblemHttpResult>> GetAlertAsync(Guid alertId, [AsParameters] Incidents.IncidentServices services, CancellationToken ct)
    {
        var (db, log) = (services.Db, services.Audit);
        if (await db.SecurityAlerts.AsNoTracking().SingleOrDefaultAsync(a => a.Id == alertId, ct) is not { } alert)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Alert not found", type: ProblemTypes.AlertNotFound);
        }
        var samples = JsonSerializer.Deserialize<List<AlertSample>>(alert.SamplesJson, AlertEvaluator.Json) ?? [];
        // Samples of audited actions name their entry: shown as the chain holds it.
        var entryIds = samples.Select(s => ParseAuditSample(s.Detail)).OfType<(Guid Chain, long Id)>().ToList();
        var ids = entryIds.Select(e => e.Id).ToList();
        var entries = await db.AuditEntries.AsNoTracking().Where(e => ids.Contains(e.Id)).OrderByDescending(e => e.Id).ToListAsync(ct);
        var responses = new List<AuditEndpoints.AuditEntryResponse>();
        foreach (var e in entries.Where(e => entryIds.Contains((e.ChainId, e.Id))))
        {
            // People's addresses are opened for a person with a second factor only, never for the operator console.
            var address = services.IsPerson || e.IpSealed is null ? await log.ReadIpAddressAsync(e, ct) : "";
            responses.Add(new AuditEndpoints.AuditEntryResponse(e.Id, e.At, e.ActorType, e.ActorId, e.Action, e.Target, e.Outcome, address));
        }
        if (responses.Count > 0)
        {
            await log.RecordAsync(null, "alert.read", $"{alertId}:{responses.Count} entries{(services.IsPerson ? ":addresses" : "")}", ct: CancellationToken.None);
        }
        return TypedResults.Ok(new AlertDetail(Summary(alert), alert.Description,
            JsonSerializer.Deserialize<List<AlertSubject>>(alert.SubjectsJson, AlertEvaluator.Json) ?? [], samples, responses));
    }

    private static Ok<List<RuleResponse>> ListRules(IOptions<DetectionOptions> options) => TypedResults.Ok(options.Value.Rules.OrderBy(r => r.Key, StringComparer.Ordinal)
        .Select(r => new RuleResponse(r.Key, r.Value.Signals, r.Value.Threshold, r.Value.WindowMinutes, r.Value.PerSubject, r.Value.BaselineFactor,
            r.Value.Severity, r.Value.Description, r.Value.Enabled, (int)r.Value.Quiet.TotalMinutes)).ToList());

    /// <summary>The entry an audit signal's sample names (<see cref="AuditLog.AuditSample"/>), or null.</summary>
    internal static (Guid Chain, long Id)? ParseAuditSample(string detail)
    {
        var parts = detail.Split(':');
        return parts.Length == 3 && parts[0] == "audit" && Guid.TryParse(parts[1], out var chain)
               && long.TryParse(parts[2], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id)
            ? (chain, id)
            : null;
    }

    internal static AlertSummary Summary(SecurityAlert a) => new(a.Id, a.Rule, a.Severity, a.Subject, a.Status, a.FirstSeen, a.LastSeen, a.ResolvedAt,
        a.Count, a.PeakWindowCount, a.Threshold, a.WindowMinutes, a.MailedAt);
}
