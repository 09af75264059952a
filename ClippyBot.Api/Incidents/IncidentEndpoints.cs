using System.Globalization;
using System.Security.Claims;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Containment;
using ClippyBot.Api.Data;
using ClippyBot.Api.Detection;
using ClippyBot.Api.Plugins;
using ClippyBot.Contracts;
using Microsoft.AspNetCore.Http.HttpResults;
using ClippyBot.Email;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Incidents;

/// <summary>
/// Seed §6 incident response for platform administrators: open an incident (by hand or from alerts), move it through
/// detection → containment → investigation → remediation → closed (forward only; closing needs the post-incident review),
/// take containment actions from it (each an automatic timeline entry), add notes, name the affected workspaces and people
/// (selected, or derived from the audit chains), and — when personal data is affected — notify them within 72 hours
/// (<see cref="BreachNotifications"/>). Every change and every refusal is written to the platform audit chain.
/// </summary>
public static class IncidentEndpoints
{
    public const int MaxListed = 200;
    public const int MaxIdsPerRequest = 1000;
    public const int MaxDerivedEntries = 10_000;
    public const int NotificationTextLength = 2000;
    public static readonly TimeSpan MaxDeriveRange = TimeSpan.FromDays(31);

    public sealed record CreateIncidentRequest(string? Title, string? Severity, string? Summary, IReadOnlyList<Guid>? AlertIds);

    public sealed record StatusRequest(string? Status);

    public sealed record ReviewRequest(string? Review);

    public sealed record NoteRequest(string? Text);

    public sealed record AlertsRequest(IReadOnlyList<Guid>? AlertIds);

    public sealed record AffectedRequest(IReadOnlyList<Guid>? WorkspaceIds, IReadOnlyList<Guid>? UserIds);

    /// <summary>Audit entries in [From, To) of any chain, optionally of one actor, one target or one action.</summary>
    public sealed record DeriveRequest(DateTimeOffset? From, DateTimeOffset? To, string? ActorId, string? Target, string? Action);

    /// <param name="Action"><c>lock-account</c>, <c>revoke-sessions</c>, <c>disable-api-key</c> or <c>quarantine-plugin</c>.</param>
    public sealed record ContainmentRequest(string? Action, Guid? UserId, Guid? KeyId, string? PluginId, string? Version, Guid? WorkspaceId, string? Reason);

    /// <param name="AwareSince">When the platform became aware that personal data was affected (GDPR counts the 72 hours
    /// from then); default now, never in the future nor before the incident's first 30 days.</param>
    public sealed record PersonalDataRequest(string? Description, DateTimeOffset? AwareSince = null);

    public sealed record IncidentSummary(Guid Id, string Title, string Severity, string Status, DateTimeOffset OpenedAt, string OpenedBy, DateTimeOffset? ClosedAt,
        DateTimeOffset? PersonalDataAffectedAt, DateTimeOffset? NotifyBy, DateTimeOffset? NotifiedAt, bool NotificationOverdue);

    public sealed record TimelineEntry(DateTimeOffset At, string Actor, string Kind, string Text);

    public sealed record AffectedSubject(string Kind, string Id, string Source, DateTimeOffset AddedAt);

    public sealed record NotificationResponse(string UserId, string Audience, DateTimeOffset QueuedAt, DateTimeOffset? DeliveredAt, string? Failure);

    public sealed record IncidentDetail(IncidentSummary Incident, string Summary, string Review, string PersonalData, IReadOnlyList<TimelineEntry> Timeline,
        IReadOnlyList<AffectedSubject> Affected, IReadOnlyList<DetectionEndpoints.AlertSummary> Alerts, IReadOnlyList<NotificationResponse> Notifications);

    public sealed record DeriveResult(int Entries, int People, int Workspaces);

    public static IHostApplicationBuilder AddIncidents(this IHostApplicationBuilder builder)
    {
        builder.AddDurableEmail<ApiDbContext>(sp =>
        {
            var secret = sp.GetRequiredService<IConfiguration>()["Encryption:KeyEncryptionKey"] ?? "";
            return new ClippyBot.Email.DurableEmailKey(
                new ClippyBot.Security.KeyProtector(ClippyBot.Security.KeyDerivation.DeriveKey(secret, "clippybot-api", "mail-outbox"), "clippybot-api"),
                ClippyBot.Security.KeyDerivation.DeriveKey(secret, "clippybot-api", "mail-recipients"));
        });
        builder.Services.AddHostedService<BreachNotifications>();
        return builder;
    }

    public static IEndpointRouteBuilder MapIncidentsApi(this IEndpointRouteBuilder app)
    {
        var incidents = app.MapGroup("/api/admin/incidents").WithTags("Incidents").RequireAuthorization(ContainmentEndpoints.PolicyName)
            .RequireRateLimiting(RateLimiting.RateLimitingExtensions.SensitivePolicy);
        incidents.MapPost("/", OpenAsync);
        incidents.MapGet("/", ListAsync);
        incidents.MapGet("/{incidentId:guid}", GetAsync);
        incidents.MapPost("/{incidentId:guid}/status", ChangeStatusAsync).ProducesProblem(StatusCodes.Status409Conflict);
        incidents.MapPut("/{incidentId:guid}/review", WriteReviewAsync).ProducesProblem(StatusCodes.Status409Conflict);
        incidents.MapPost("/{incidentId:guid}/notes", AddNoteAsync).ProducesProblem(StatusCodes.Status409Conflict);
        incidents.MapPost("/{incidentId:guid}/alerts", LinkAlertsAsync).ProducesProblem(StatusCodes.Status409Conflict);
        incidents.MapPost("/{incidentId:guid}/affected", AddAffectedAsync).ProducesProblem(StatusCodes.Status409Conflict);
        incidents.MapPost("/{incidentId:guid}/affected/derive", DeriveAffectedAsync).ProducesProblem(StatusCodes.Status409Conflict);
        // 502: Identity did not carry out an account action.
        incidents.MapPost("/{incidentId:guid}/containment", ContainAsync).ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status502BadGateway);
        incidents.MapPost("/{incidentId:guid}/personal-data", MarkPersonalDataAsync).ProducesProblem(StatusCodes.Status409Conflict);
        incidents.MapPost("/{incidentId:guid}/notify", BreachNotifications.NotifyAsync).ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status502BadGateway);
        return app;
    }

    private static async Task<Results<Created<IncidentDetail>, ValidationProblem>> OpenAsync(CreateIncidentRequest request, [AsParameters] IncidentServices services, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var title = request.Title?.Trim() ?? "";
        if (title.Length is 0 or > Incident.TitleLength)
        {
            errors["title"] = [$"Name the incident in 1–{Incident.TitleLength} characters."];
        }
        if (!DetectionOptions.Severities.Contains(request.Severity ?? "", StringComparer.Ordinal))
        {
            errors["severity"] = [$"Use one of {string.Join(", ", DetectionOptions.Severities)}."];
        }
        if (request.Summary is { Length: > Incident.SummaryLength })
        {
            errors["summary"] = [$"At most {Incident.SummaryLength} characters."];
        }
        var alertIds = request.AlertIds?.Distinct().ToList() ?? [];
        if (alertIds.Count > MaxIdsPerRequest)
        {
            errors["alertIds"] = [$"At most {MaxIdsPerRequest} alerts."];
        }
        else if (alertIds.Count > 0 && await services.Db.SecurityAlerts.CountAsync(a => alertIds.Contains(a.Id), ct) != alertIds.Count)
        {
            errors["alertIds"] = ["Some of these alerts do not exist."];
        }
        if (errors.Count > 0)
        {
            await services.Audit.RecordAsync(null, "incident.opened", "-", "refused", CancellationToken.None);
            return TypedResults.ValidationProblem(errors);
        }
        var now = services.Time.GetUtcNow();
        var incident = new Incident
        {
            Id = Guid.CreateVersion7(now), Title = title, Severity = request.Severity!, Summary = request.Summary ?? "", Status = IncidentStatus.Detection,
            OpenedAt = now, OpenedBy = services.Actor,
        };
        services.Db.Incidents.Add(incident);
        services.Timeline(incident.Id, "opened", $"Opened ({incident.Severity}): {title}");
        await services.Db.SaveChangesAsync(ct);
        if (alertIds.Count > 0)
        {
            await LinkAsync(services, incident.Id, alertIds, ct);
        }
        await services.Audit.RecordAsync(null, "incident.opened", incident.Id.ToString(), ct: CancellationToken.None);
        return TypedResults.Created($"/api/admin/incidents/{incident.Id}", await DetailAsync(services.Db, incident, services.Time.GetUtcNow(), ct));
    }

    private static async Task<Results<Ok<List<IncidentSummary>>, ValidationProblem>> ListAsync(string? status, ApiDbContext db, TimeProvider time, CancellationToken ct)
    {
        var incidents = db.Incidents.AsNoTracking();
        if (!string.IsNullOrEmpty(status))
        {
            if (ParseStatus(status) is not { } wanted)
            {
                return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["status"] = [StatusHelp] });
            }
            incidents = incidents.Where(i => i.Status == wanted);
        }
        var now = time.GetUtcNow();
        return TypedResults.Ok((await incidents.OrderByDescending(i => i.OpenedAt).Take(MaxListed).ToListAsync(ct)).Select(i => Summary(i, now)).ToList());
    }

    private static async Task<Results<Ok<IncidentDetail>, ProblemHttpResult>> GetAsync(Guid incidentId, ApiDbContext db, TimeProvider time, CancellationToken ct) =>
        await db.Incidents.AsNoTracking().SingleOrDefaultAsync(i => i.Id == incidentId, ct) is { } incident
            ? TypedResults.Ok(await DetailAsync(db, incident, time.GetUtcNow(), ct))
            : NotFound();

    private static async Task<Results<Ok<IncidentSummary>, ProblemHttpResult, ValidationProblem>> ChangeStatusAsync(
        Guid incidentId, StatusRequest request, [AsParameters] IncidentServices services, CancellationToken ct)
    {
        if (await services.Db.Incidents.SingleOrDefaultAsync(i => i.Id == incidentId, ct) is not { } incident)
        {
            return NotFound();
        }
        if (ParseStatus(request.Status) is not { } next)
        {
            await services.RefusedAsync(incidentId, "incident.status_changed");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["status"] = [StatusHelp] });
        }
        if (next <= incident.Status)
        {
            await services.RefusedAsync(incidentId, "incident.status_changed");
            return Conflict($"The incident is in {Name(incident.Status)}; it only moves forward (detection → containment → investigation → remediation → closed).");
        }
        if (next == IncidentStatus.Closed && string.IsNullOrWhiteSpace(incident.Review))
        {
            await services.RefusedAsync(incidentId, "incident.closed");
            return Conflict("Write the post-incident review (PUT …/review) before closing: what happened, why, what changes so it does not happen again.");
        }
        if (next == IncidentStatus.Closed && incident.PersonalDataAffectedAt is not null
            && (incident.NotifiedAt is null || await BreachNotifications.UntoldAsync(services.Db, incidentId, ct) > 0))
        {
            await services.RefusedAsync(incidentId, "incident.closed");
            return Conflict("Personal data was affected and not everyone affected has been notified yet (POST …/notify): an incident does not close on people who were never told.");
        }
        var now = services.Time.GetUtcNow();
        var from = incident.Status;
        // Guarded by the status it had: of two administrators moving it at once, one wins and the other is told.
        var moved = await services.Db.Incidents.Where(i => i.Id == incidentId && i.Status == from)
            .ExecuteUpdateAsync(s => s.SetProperty(i => i.Status, next).SetProperty(i => i.ClosedAt, next == IncidentStatus.Closed ? now : null), ct);
        if (moved == 0)
        {
            await services.RefusedAsync(incidentId, "incident.status_changed");
            return Conflict("Someone else changed the incident's status just now; read it again.");
        }
        services.Timeline(incidentId, "status", $"{Name(from)} → {Name(next)}");
        await services.Db.SaveChangesAsync(ct);
        await services.Audit.RecordAsync(null, next == IncidentStatus.Closed ? "incident.closed" : "incident.status_changed", $"{incidentId}:{Name(next)}", ct: CancellationToken.None);
        incident.Status = next;
        incident.ClosedAt = next == IncidentStatus.Closed ? now : null;
        return TypedResults.Ok(Summary(incident, now));
    }

    private static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> WriteReviewAsync(
        Guid incidentId, ReviewRequest request, [AsParameters] IncidentServices services, CancellationToken ct)
    {
        if (await services.OpenIncidentAsync(incidentId, "incident.reviewed", ct) is { } refused)
        {
            return refused;
        }
        var review = request.Review?.Trim() ?? "";
        if (review.Length is 0 or > Incident.ReviewLength)
        {
            await services.RefusedAsync(incidentId, "incident.reviewed");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["review"] = [$"Write 1–{Incident.ReviewLength} characters."] });
        }
        await services.Db.Incidents.Where(i => i.Id == incidentId).ExecuteUpdateAsync(s => s.SetProperty(i => i.Review, review), ct);
        services.Timeline(incidentId, "review", "The post-incident review was written.");
        await services.Db.SaveChangesAsync(ct);
        await services.Audit.RecordAsync(null, "incident.reviewed", incidentId.ToString(), ct: CancellationToken.None);
        return TypedResults.NoContent();
    }

    private static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> AddNoteAsync(
        Guid incidentId, NoteRequest request, [AsParameters] IncidentServices services, CancellationToken ct)
    {
        if (await services.OpenIncidentAsync(incidentId, "incident.noted", ct) is { } refused)
        {
            return refused;
        }
        var text = request.Text?.Trim() ?? "";
        if (text.Length is 0 or > IncidentTimelineEntry.TextLength)
        {
            await services.RefusedAsync(incidentId, "incident.noted");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["text"] = [$"Write 1–{IncidentTimelineEntry.TextLength} characters."] });
        }
        services.Timeline(incidentId, "note", text);
        await services.Db.SaveChangesAsync(ct);
        await services.Audit.RecordAsync(null, "incident.noted", incidentId.ToString(), ct: CancellationToken.None);
        return TypedResults.NoContent();
    }

    private static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> LinkAlertsAsync(
        Guid incidentId, AlertsRequest request, [AsParameters] IncidentServices services, CancellationToken ct)
    {
        if (await services.OpenIncidentAsync(incidentId, "incident.alerts_linked", ct) is { } refused)
        {
            return refused;
        }
        var ids = request.AlertIds?.Distinct().ToList() ?? [];
        if (ids.Count is 0 or > MaxIdsPerRequest || await services.Db.SecurityAlerts.CountAsync(a => ids.Contains(a.Id), ct) != ids.Count)
        {
            await services.RefusedAsync(incidentId, "incident.alerts_linked");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["alertIds"] = [$"Name 1–{MaxIdsPerRequest} existing alerts."] });
        }
        await LinkAsync(services, incidentId, ids, ct);
        await services.Audit.RecordAsync(null, "incident.alerts_linked", $"{incidentId}:{ids.Count}", ct: CancellationToken.None);
        return TypedResults.NoContent();
    }

    private static async Task LinkAsync(IncidentServices services, Guid incidentId, List<Guid> alertIds, CancellationToken ct)
    {
        await services.Db.SecurityAlerts.Where(a => alertIds.Contains(a.Id)).ExecuteUpdateAsync(s => s.SetProperty(a => a.IncidentId, incidentId), ct);
        foreach (var alert in await services.Db.SecurityAlerts.AsNoTracking().Where(a => alertIds.Contains(a.Id)).OrderBy(a => a.FirstSeen).ToListAsync(ct))
        {
            services.Timeline(incidentId, "alert", $"Alert {alert.Rule} ({alert.Severity}) for {alert.Subject}: {alert.Count} since {alert.FirstSeen.UtcDateTime:u}");
        }
        await services.Db.SaveChangesAsync(ct);
    }

    private static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> AddAffectedAsync(
        Guid incidentId, AffectedRequest request, [AsParameters] IncidentServices services, CancellationToken ct)
    {
        if (await services.OpenIncidentAsync(incidentId, "incident.affected_added", ct) is { } refused)
        {
            return refused;
        }
        var workspaces = request.WorkspaceIds?.Distinct().ToList() ?? [];
        var people = request.UserIds?.Distinct().ToList() ?? [];
        if (workspaces.Count + people.Count is 0 or > MaxIdsPerRequest)
        {
            await services.RefusedAsync(incidentId, "incident.affected_added");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["userIds"] = [$"Name 1–{MaxIdsPerRequest} workspaces and people."] });
        }
        if (await services.Db.Workspaces.CountAsync(w => workspaces.Contains(w.Id), ct) != workspaces.Count)
        {
            await services.RefusedAsync(incidentId, "incident.affected_added");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["workspaceIds"] = ["Some of these workspaces do not exist."] });
        }
        var added = await AddSubjectsAsync(services, incidentId, workspaces.Select(w => w.ToString()), people.Select(p => p.ToString()), "selected", ct);
        services.Timeline(incidentId, "affected", $"{added.Workspaces} workspaces and {added.People} people named as affected.");
        if (await services.SaveOrConflictAsync(incidentId, "incident.affected_added") is { } clash)
        {
            return clash;
        }
        await services.Audit.RecordAsync(null, "incident.affected_added", $"{incidentId}:{added.Workspaces}w:{added.People}p", ct: CancellationToken.None);
        return TypedResults.NoContent();
    }

    /// <summary>Affected people and workspaces from the audit chains: whoever acted (or was acted on) in the range, in whichever workspace.</summary>
    private static async Task<Results<Ok<DeriveResult>, ProblemHttpResult, ValidationProblem>> DeriveAffectedAsync(
        Guid incidentId, DeriveRequest request, [AsParameters] IncidentServices services, CancellationToken ct)
    {
        if (await services.OpenIncidentAsync(incidentId, "incident.affected_derived", ct) is { } refused)
        {
            return refused;
        }
        if (request.From?.ToUniversalTime() is not { } from || request.To?.ToUniversalTime() is not { } to || to <= from || to - from > MaxDeriveRange
            || request.ActorId is { Length: > AuditEntry.ActorIdLength } || request.Target is { Length: > AuditEntry.TargetLength } || request.Action is { Length: > AuditEntry.ActionLength })
        {
            await services.RefusedAsync(incidentId, "incident.affected_derived");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["from"] = [$"Give from < to, at most {MaxDeriveRange.TotalDays:0} days apart, and filters no longer than the audit fields."],
            });
        }
        var entries = Investigation.AuditSearch.Filter(services.Db.AuditEntries.AsNoTracking(), from, to, request.ActorId, request.Target, request.Action, address: null);
        var found = await entries.OrderBy(e => e.Id).Take(MaxDerivedEntries + 1)
            .Select(e => new { e.ChainId, e.ActorType, e.ActorId, e.Action, e.Target }).ToListAsync(ct);
        if (found.Count > MaxDerivedEntries)
        {
            await services.RefusedAsync(incidentId, "incident.affected_derived");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["from"] = [$"More than {MaxDerivedEntries} entries match: narrow the range or the filters."] });
        }
        var people = found.Where(e => e.ActorType == "user").Select(e => e.ActorId)
            // Actions on an account name it as their target.
            .Concat(found.Where(e => e.Action.StartsWith("account.", StringComparison.Ordinal) || e.Action.StartsWith("member.", StringComparison.Ordinal))
                .Select(e => e.Target.Split(':')[0]).Where(t => Guid.TryParse(t, out _)))
            .Distinct(StringComparer.Ordinal).ToList();
        var workspaces = found.Where(e => e.ChainId != Guid.Empty).Select(e => e.ChainId.ToString()).Distinct(StringComparer.Ordinal).ToList();
        var added = await AddSubjectsAsync(services, incidentId, workspaces, people, "derived", ct);
        services.Timeline(incidentId, "affected", string.Create(CultureInfo.InvariantCulture,
            $"Derived from {found.Count} audit entries ({from.UtcDateTime:u} – {to.UtcDateTime:u}{Filters(request)}): {added.Workspaces} more workspaces, {added.People} more people."));
        if (await services.SaveOrConflictAsync(incidentId, "incident.affected_derived") is { } clash)
        {
            return clash;
        }
        await services.Audit.RecordAsync(null, "incident.affected_derived", $"{incidentId}:{found.Count} entries", ct: CancellationToken.None);
        return TypedResults.Ok(new DeriveResult(found.Count, people.Count, workspaces.Count));
    }

    private static string Filters(DeriveRequest r) =>
        (r.ActorId is { Length: > 0 } a ? $", actor {a}" : "") + (r.Target is { Length: > 0 } t ? $", target {t}" : "") + (r.Action is { Length: > 0 } x ? $", action {x}" : "");

    private static async Task<(int Workspaces, int People)> AddSubjectsAsync(IncidentServices services, Guid incidentId, IEnumerable<string> workspaces, IEnumerable<string> people,
        string source, CancellationToken ct)
    {
        var known = (await services.Db.IncidentSubjects.AsNoTracking().Where(s => s.IncidentId == incidentId).Select(s => s.Kind + ":" + s.SubjectId).ToListAsync(ct))
            .ToHashSet(StringComparer.Ordinal);
        var now = services.Time.GetUtcNow();
        var (w, p) = (0, 0);
        foreach (var (kind, id) in workspaces.Select(x => (IncidentSubject.Workspace, x)).Concat(people.Select(x => (IncidentSubject.Person, x))))
        {
            if (known.Add($"{kind}:{id}"))
            {
                services.Db.IncidentSubjects.Add(new IncidentSubject { IncidentId = incidentId, Kind = kind, SubjectId = id, Source = source, AddedAt = now });
                _ = kind == IncidentSubject.Workspace ? w++ : p++;
            }
        }
        return (w, p);
    }

    /// <summary>A containment action taken from the incident: the same action (and audit) as <c>/api/admin/…</c>, plus a timeline entry.</summary>
    private static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> ContainAsync(Guid incidentId, ContainmentRequest request,
        [AsParameters] IncidentServices services, CancellationToken ct)
    {
        // The endpoints' own parameter objects, so the action is exactly theirs (one [AsParameters] per handler: their names overlap).
        var containment = ActivatorUtilities.CreateInstance<ContainmentServices>(services.Context.RequestServices, services.Context);
        var plugins = ActivatorUtilities.CreateInstance<PluginServices>(services.Context.RequestServices, services.Context);
        if (await services.OpenIncidentAsync(incidentId, "incident.containment", ct) is { } refused)
        {
            return refused;
        }
        var (what, act) = request switch
        {
            { Action: "lock-account", UserId: { } user } => ($"account {user} locked", (Func<Task<IResult>>)(async () => await ContainmentEndpoints.LockAsync(user, containment, ct))),
            { Action: "revoke-sessions", UserId: { } user } => ($"every session of account {user} revoked",
                (Func<Task<IResult>>)(async () => await ContainmentEndpoints.RevokeUserSessionsAsync(user, containment, ct))),
            { Action: "disable-api-key", KeyId: { } key } => ($"API key {key} disabled", (Func<Task<IResult>>)(async () => await ContainmentEndpoints.DisableApiKeyAsync(key, containment, ct))),
            { Action: "quarantine-plugin", PluginId: { } plugin } when PluginIds.IsValid(plugin) && request.Version is null or { Length: <= 64 } =>
                ($"plugin {plugin} {request.Version ?? "(every version)"} quarantined {(request.WorkspaceId is { } w ? $"in workspace {w}" : "platform-wide")}",
                    (Func<Task<IResult>>)(async () => await PluginEndpoints.SetQuarantineAsync(plugin, new PluginEndpoints.QuarantineRequest(request.Version, request.WorkspaceId,
                        string.IsNullOrWhiteSpace(request.Reason) ? $"incident {incidentId}" : $"incident {incidentId}: {request.Reason}"), true, plugins, ct))),
            _ => ("", (Func<Task<IResult>>?)null),
        };
        if (act is null || request.Reason is { Length: > 500 })
        {
            await services.RefusedAsync(incidentId, "incident.containment");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["action"] = ["Use lock-account or revoke-sessions (userId), disable-api-key (keyId) or quarantine-plugin (pluginId, optional version and workspaceId; reason ≤ 500)."],
            });
        }
        IResult result;
        try
        {
            result = await act();
        }
        catch (Exception e) when (e is PluginHostUnavailableException or PluginHostClient.PluginHostProblemException)
        {
            await services.ContainmentRecordedAsync(incidentId, $"FAILED: {what} (the PluginHost did not carry it out)", "failed");
            throw;
        }
        switch (result is INestedHttpResult nested ? nested.Result : result)
        {
            case NoContent:
                await services.ContainmentRecordedAsync(incidentId, what, "success");
                return TypedResults.NoContent();
            case ProblemHttpResult problem:
                await services.ContainmentRecordedAsync(incidentId, $"FAILED: {what} ({problem.ProblemDetails.Title})", "failed");
                return problem;
            case ValidationProblem validation:
                await services.ContainmentRecordedAsync(incidentId, $"REFUSED: {what}", "refused");
                return validation;
            default:
                throw new InvalidOperationException("A containment action answered something unexpected.");
        }
    }

    private static async Task<Results<Ok<IncidentSummary>, ProblemHttpResult, ValidationProblem>> MarkPersonalDataAsync(
        Guid incidentId, PersonalDataRequest request, [AsParameters] IncidentServices services, CancellationToken ct)
    {
        if (await services.OpenIncidentAsync(incidentId, "incident.personal_data_affected", ct) is { } refused)
        {
            return refused;
        }
        var description = request.Description?.Trim() ?? "";
        if (description.Length is 0 or > Incident.PersonalDataLength)
        {
            await services.RefusedAsync(incidentId, "incident.personal_data_affected");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["description"] = [$"Say which personal data, in 1–{Incident.PersonalDataLength} characters."] });
        }
        var now = services.Time.GetUtcNow();
        var openedAt = await services.Db.Incidents.Where(i => i.Id == incidentId).Select(i => i.OpenedAt).SingleAsync(ct);
        var aware = request.AwareSince?.ToUniversalTime() ?? now;
        if (aware > now || aware < openedAt.AddDays(-30))
        {
            await services.RefusedAsync(incidentId, "incident.personal_data_affected");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["awareSince"] = ["When the platform became aware: not in the future, at most 30 days before the incident was opened."] });
        }
        // The clock starts once, at the first marking; a later description refines what, not when.
        await services.Db.Incidents.Where(i => i.Id == incidentId && i.PersonalDataAffectedAt == null).ExecuteUpdateAsync(s => s.SetProperty(i => i.PersonalDataAffectedAt, aware), ct);
        await services.Db.Incidents.Where(i => i.Id == incidentId).ExecuteUpdateAsync(s => s.SetProperty(i => i.PersonalData, description), ct);
        var incident = await services.Db.Incidents.AsNoTracking().SingleAsync(i => i.Id == incidentId, ct);
        services.Timeline(incidentId, "personal-data", $"Personal data affected: {description}. Notify the affected people by {incident.NotifyBy!.Value.UtcDateTime:u}.");
        await services.Db.SaveChangesAsync(ct);
        await services.Audit.RecordAsync(null, "incident.personal_data_affected", incidentId.ToString(), ct: CancellationToken.None);
        return TypedResults.Ok(Summary(incident, now));
    }

    internal static async Task<IncidentDetail> DetailAsync(ApiDbContext db, Incident incident, DateTimeOffset now, CancellationToken ct)
    {
        var timeline = await db.IncidentTimeline.AsNoTracking().Where(t => t.IncidentId == incident.Id).OrderBy(t => t.Id)
            .Select(t => new TimelineEntry(t.At, t.Actor, t.Kind, t.Text)).ToListAsync(ct);
        var affected = await db.IncidentSubjects.AsNoTracking().Where(s => s.IncidentId == incident.Id).OrderBy(s => s.Kind).ThenBy(s => s.SubjectId)
            .Select(s => new AffectedSubject(s.Kind, s.SubjectId, s.Source, s.AddedAt)).ToListAsync(ct);
        var alerts = await db.SecurityAlerts.AsNoTracking().Where(a => a.IncidentId == incident.Id).OrderBy(a => a.FirstSeen).ToListAsync(ct);
        var notifications = await db.IncidentNotifications.AsNoTracking().Where(n => n.IncidentId == incident.Id).OrderBy(n => n.QueuedAt).ThenBy(n => n.UserId)
            .Select(n => new NotificationResponse(n.UserId, n.Audience, n.QueuedAt, n.DeliveredAt, n.Failure)).ToListAsync(ct);
        return new IncidentDetail(Summary(incident, now), incident.Summary, incident.Review, incident.PersonalData, timeline, affected,
            [.. alerts.Select(DetectionEndpoints.Summary)], notifications);
    }

    public static IncidentSummary Summary(Incident i, DateTimeOffset now) => new(i.Id, i.Title, i.Severity, Name(i.Status), i.OpenedAt, i.OpenedBy, i.ClosedAt,
        i.PersonalDataAffectedAt, i.NotifyBy, i.NotifiedAt, IsOverdue(i, now));

    /// <summary>Personal data affected, nobody notified yet, and the 72 hours are up.</summary>
    public static bool IsOverdue(Incident incident, DateTimeOffset now) =>
        incident is { NotifiedAt: null, NotifyBy: { } by } && now > by;

    private const string StatusHelp = "Use detection, containment, investigation, remediation or closed.";

    public static string Name(IncidentStatus status) => status.ToString().ToLowerInvariant();

    private static IncidentStatus? ParseStatus(string? value) =>
        // Letters only: Enum.TryParse would also take numbers, lists ("a,b") and surrounding spaces.
        value is { Length: > 0 and <= 16 } && value.All(char.IsAsciiLetter)
        && Enum.TryParse<IncidentStatus>(value, ignoreCase: true, out var status) && Enum.IsDefined(status)
            ? status
            : null;

    internal static ProblemHttpResult NotFound() => TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Incident not found", type: ProblemTypes.IncidentNotFound);

    internal static ProblemHttpResult Conflict(string detail) =>
        TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "Not possible in the incident's state", detail: detail, type: ProblemTypes.IncidentState);
}

/// <summary>What every incident handler needs: the database, the audit chain, the clock, and who is acting.</summary>
public sealed class IncidentServices(ApiDbContext db, AuditLog audit, TimeProvider time, HttpContext context)
{
    public ApiDbContext Db { get; } = db;

    public AuditLog Audit { get; } = audit;

    public TimeProvider Time { get; } = time;

    public HttpContext Context { get; } = context;

    /// <summary>The administrator's subject, or the operator console and the person it names.</summary>
    public string Actor => Operations.OperatorCaller.HasOperationsScope(Context.User)
        ? Operations.OperatorCaller.Actor(Context.User, Context)
        : Context.User.FindFirstValue("sub") ?? "unknown";

    /// <summary>Whether the caller is a person (who signed in with a second factor: the platform-admin policy made sure).</summary>
    public bool IsPerson => !Operations.OperatorCaller.HasOperationsScope(Context.User);

    public void Timeline(Guid incidentId, string kind, string text) => Db.IncidentTimeline.Add(new IncidentTimelineEntry
    {
        IncidentId = incidentId, At = Time.GetUtcNow(), Actor = AuditLog.Bounded(Actor, 100), Kind = kind, Text = AuditLog.Bounded(text, IncidentTimelineEntry.TextLength),
    });

    /// <summary>Null when the incident exists and is still open; otherwise the refusal (recorded).</summary>
    public async Task<ProblemHttpResult?> OpenIncidentAsync(Guid incidentId, string action, CancellationToken ct)
    {
        var status = await Db.Incidents.AsNoTracking().Where(i => i.Id == incidentId).Select(i => (IncidentStatus?)i.Status).SingleOrDefaultAsync(ct);
        if (status is null)
        {
            return IncidentEndpoints.NotFound();
        }
        if (status == IncidentStatus.Closed)
        {
            await RefusedAsync(incidentId, action);
            return IncidentEndpoints.Conflict("The incident is closed.");
        }
        return null;
    }

    /// <summary>Saves; when another administrator added the same rows at the same moment, a 409 (recorded) instead of a 500.</summary>
    public async Task<ProblemHttpResult?> SaveOrConflictAsync(Guid incidentId, string action)
    {
        try
        {
            await Db.SaveChangesAsync(CancellationToken.None);
            return null;
        }
        catch (DbUpdateException e) when (e.InnerException is Npgsql.PostgresException { SqlState: Npgsql.PostgresErrorCodes.UniqueViolation })
        {
            Db.ChangeTracker.Clear();
            await RefusedAsync(incidentId, action);
            return IncidentEndpoints.Conflict("Someone else changed the same part of this incident just now; read it again.");
        }
    }

    public Task RefusedAsync(Guid incidentId, string action) => Audit.RecordAsync(null, action, incidentId.ToString(), "refused", CancellationToken.None);

    public async Task ContainmentRecordedAsync(Guid incidentId, string what, string outcome)
    {
        Timeline(incidentId, "containment", what);
        await Db.SaveChangesAsync(CancellationToken.None);
        await Audit.RecordAsync(null, "incident.containment", AuditLog.Bounded($"{incidentId}:{what}", AuditEntry.TargetLength), outcome, CancellationToken.None);
    }
}
