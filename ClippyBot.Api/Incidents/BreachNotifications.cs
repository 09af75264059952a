using ClippyBot.Api.Containment;
using ClippyBot.Api.Data;
using ClippyBot.Api.Workspaces;
using ClippyBot.Contracts;
using ClippyBot.Email;
using ClippyBot.ServiceDefaults.Detection;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Incidents;

/// <summary>
/// Telling people their personal data was affected (GDPR art. 34; the security page promises 72 hours). The administrator
/// writes what happened, what data, what we did and what they should do; each affected person gets that mail (once), each
/// owner of an affected workspace a notice of their own, all through the durable outbox. Every round
/// (<c>Incidents:CheckInterval</c>) records what became of each mail — delivered, or given up — and raises
/// <see cref="SecuritySignalNames.BreachNotificationOverdue"/> for every incident past its 72 hours with nobody told, so the
/// <c>breach-notification-overdue</c> rule alerts the administrators until someone is.
/// </summary>
public sealed partial class BreachNotifications(IServiceScopeFactory scopes, TimeProvider clock, SecuritySignals signals,
    ClippyBot.ServiceDefaults.Data.MigrationStatus<ApiDbContext> migrations, IConfiguration configuration, ILogger<BreachNotifications> logger)
    : PeriodicService(configuration, clock, logger)
{
    public sealed record NotifyRequest(string? WhatHappened, string? WhatData, string? WhatWeDid, string? WhatYouShouldDo);

    public sealed record NotifyResult(int People, int Owners, int WithoutAddress);

    protected override string IntervalKey => "Incidents:CheckInterval";

    protected override TimeSpan DefaultInterval => TimeSpan.FromSeconds(30);

    protected override async Task RunOnceAsync(CancellationToken ct)
    {
        if (migrations.Completed)
        {
            await CheckAsync(ct);
        }
    }

    /// <summary>One round: deliveries recorded, overdue incidents signalled.</summary>
    public async Task CheckAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        var pending = await db.IncidentNotifications.Where(n => n.MailId != null && n.DeliveredAt == null && n.Failure == null).Take(1000).ToListAsync(ct);
        if (pending.Count > 0)
        {
            var ids = pending.Select(n => n.MailId!.Value).ToList();
            var mails = await db.Set<OutboxMail>().AsNoTracking().Where(m => ids.Contains(m.Id)).ToDictionaryAsync(m => m.Id, m => m.SentAt, ct);
            foreach (var notification in pending)
            {
                if (!mails.TryGetValue(notification.MailId!.Value, out var sentAt))
                {
                    notification.Failure = "The mail server refused it; delivery was given up.";
                }
                else if (sentAt is { } sent)
                {
                    notification.DeliveredAt = sent;
                }
            }
            await db.SaveChangesAsync(ct);
        }
        var now = Clock.GetUtcNow();
        var due = now - Incident.NotificationDeadline;
        foreach (var overdue in await db.Incidents.AsNoTracking()
                     .Where(i => i.PersonalDataAffectedAt != null && i.PersonalDataAffectedAt < due && i.NotifiedAt == null && i.Status != IncidentStatus.Closed)
                     .Select(i => new { i.Id, i.PersonalDataAffectedAt }).ToListAsync(ct))
        {
            // Raised every round while overdue: the alert stays open until people are told.
            signals.Raise(SecuritySignalNames.BreachNotificationOverdue, overdue.Id.ToString(),
                $"personal data affected since {overdue.PersonalDataAffectedAt!.Value.UtcDateTime:u}; nobody notified");
        }
    }

    /// <summary>Affected people and owners of affected workspaces without a notification yet (the incident does not close while any).</summary>
    public static async Task<int> UntoldAsync(ApiDbContext db, Guid incidentId, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        var subjects = await db.IncidentSubjects.AsNoTracking().Where(s => s.IncidentId == incidentId).ToListAsync(ct);
        var workspaceIds = subjects.Where(s => s.Kind == IncidentSubject.Workspace).Select(s => Guid.Parse(s.SubjectId)).ToList();
        var owners = await db.Memberships.AsNoTracking().Where(m => workspaceIds.Contains(m.WorkspaceId) && m.Role == WorkspaceRole.Owner)
            .Select(m => m.UserId).Distinct().ToListAsync(ct);
        var told = (await db.IncidentNotifications.AsNoTracking().Where(n => n.IncidentId == incidentId).Select(n => n.Audience + ":" + n.UserId).ToListAsync(ct))
            .ToHashSet(StringComparer.Ordinal);
        return subjects.Count(s => s.Kind == IncidentSubject.Person && Guid.TryParse(s.SubjectId, out _) && !told.Contains(IncidentNotification.Person + ":" + s.SubjectId))
               + owners.Count(o => !told.Contains(IncidentNotification.Owner + ":" + o));
    }

    /// <summary>Mails every affected person and every owner of an affected workspace not told yet; records each mail.</summary>
    internal static async Task<Results<Ok<NotifyResult>, ProblemHttpResult, ValidationProblem>> NotifyAsync(Guid incidentId, NotifyRequest request,
        [AsParameters] IncidentServices services, IdentityServiceClient identity, DurableEmailOutbox<ApiDbContext> outbox, CancellationToken ct)
    {
        if (await services.OpenIncidentAsync(incidentId, "incident.notified", ct) is { } refused)
        {
            return refused;
        }
        var texts = new[] { request.WhatHappened, request.WhatData, request.WhatWeDid, request.WhatYouShouldDo }.Select(t => t?.Trim() ?? "").ToArray();
        if (texts.Any(t => t.Length is 0 or > IncidentEndpoints.NotificationTextLength))
        {
            await services.RefusedAsync(incidentId, "incident.notified");
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["whatHappened"] = [$"Write each of whatHappened, whatData, whatWeDid and whatYouShouldDo in 1–{IncidentEndpoints.NotificationTextLength} characters: people read exactly this."],
            });
        }
        var incident = await services.Db.Incidents.AsNoTracking().SingleAsync(i => i.Id == incidentId, ct);
        if (incident.PersonalDataAffectedAt is null)
        {
            await services.RefusedAsync(incidentId, "incident.notified");
            return IncidentEndpoints.Conflict("Mark the personal data affected first (POST …/personal-data): it starts the 72-hour clock this notice answers.");
        }
        var subjects = await services.Db.IncidentSubjects.AsNoTracking().Where(s => s.IncidentId == incidentId).ToListAsync(ct);
        var people = subjects.Where(s => s.Kind == IncidentSubject.Person).Select(s => Guid.TryParse(s.SubjectId, out var g) ? g : (Guid?)null).OfType<Guid>().ToList();
        var workspaceIds = subjects.Where(s => s.Kind == IncidentSubject.Workspace).Select(s => Guid.Parse(s.SubjectId)).ToList();
        var owners = await services.Db.Memberships.AsNoTracking().Where(m => workspaceIds.Contains(m.WorkspaceId) && m.Role == WorkspaceRole.Owner)
            .Select(m => new { m.UserId, m.WorkspaceId, m.Workspace!.Name }).ToListAsync(ct);
        if (people.Count == 0 && owners.Count == 0)
        {
            await services.RefusedAsync(incidentId, "incident.notified");
            return IncidentEndpoints.Conflict("Name the affected people or workspaces first (…/affected, or …/affected/derive from the audit chains).");
        }
        var told = (await services.Db.IncidentNotifications.AsNoTracking().Where(n => n.IncidentId == incidentId).Select(n => n.Audience + ":" + n.UserId).ToListAsync(ct))
            .ToHashSet(StringComparer.Ordinal);
        var ownerIds = owners.Select(o => Guid.TryParse(o.UserId, out var g) ? g : (Guid?)null).OfType<Guid>();
        IReadOnlyList<IdentityServiceClient.Contact> contacts;
        try
        {
            contacts = await identity.ContactsAsync([.. people.Concat(ownerIds).Distinct()], ct);
        }
        catch (ServiceClients.ServiceUnavailableException e)
        {
            await services.Audit.RecordAsync(null, "incident.notified", incidentId.ToString(), "failed", CancellationToken.None);
            return ContainmentEndpoints.IdentityUnavailable(e);
        }
        var addresses = contacts.ToDictionary(c => c.UserId.ToString(), c => c.Email, StringComparer.Ordinal);
        var now = services.Time.GetUtcNow();
        var mails = new List<(IncidentNotification Row, string Address, EmailMessage Message)>();
        var withoutAddress = 0;
        void Claim(string userId, string audience, Func<string, EmailMessage> message)
        {
            if (!told.Add($"{audience}:{userId}"))
            {
                return;
            }
            var row = new IncidentNotification { IncidentId = incidentId, UserId = userId, Audience = audience, QueuedAt = now };
            if (addresses.TryGetValue(userId, out var address))
            {
                mails.Add((row, address, message(address)));
            }
            else
            {
                row.Failure = "No verified address (or the account is gone).";
                withoutAddress++;
            }
            services.Db.IncidentNotifications.Add(row);
        }
        foreach (var person in people)
        {
            Claim(person.ToString(), IncidentNotification.Person, to => EmailMessage.Notice(to, "breach-notification",
                "Important: a security incident affected your ClippyBot data",
                "We are writing to tell you about a security incident at ClippyBot that affected personal data of yours.",
                "What happened: " + texts[0], "Which of your data: " + texts[1], "What we have done: " + texts[2], "What you should do: " + texts[3],
                $"If you have questions, reply to this mail quoting incident {incidentId}."));
        }
        foreach (var owner in owners.GroupBy(o => o.UserId))
        {
            var names = string.Join(", ", owner.Select(o => $"\"{o.Name}\""));
            Claim(owner.Key, IncidentNotification.Owner, to => EmailMessage.Notice(to, "breach-notification-owner",
                $"Security incident affecting your ClippyBot workspace {names}",
                $"You own {names}, which a security incident at ClippyBot affected. The people whose personal data was affected are being told directly.",
                "What happened: " + texts[0], "Which data: " + texts[1], "What we have done: " + texts[2], "What you and your members should do: " + texts[3],
                $"If you have questions, reply to this mail quoting incident {incidentId}."));
        }
        // The rows first: of two administrators notifying at once (or a retry), one claims each person and only it mails.
        if (await services.SaveOrConflictAsync(incidentId, "incident.notified") is { } clash)
        {
            return clash;
        }
        var (sentPeople, sentOwners) = (0, 0);
        foreach (var (row, _, message) in mails)
        {
            // Claimed: queued whatever the caller does now (a hang-up must not leave people claimed but never mailed).
            row.MailId = await outbox.EnqueueTrackedAsync(message, MailPriority.SecurityNotice, CancellationToken.None);
            _ = row.Audience == IncidentNotification.Person ? sentPeople++ : sentOwners++;
        }
        if (sentPeople + sentOwners > 0)
        {
            // "Notified" means someone was actually mailed: an incident whose people have no address stays overdue.
            await services.Db.Incidents.Where(i => i.Id == incidentId && i.NotifiedAt == null).ExecuteUpdateAsync(s => s.SetProperty(i => i.NotifiedAt, now), CancellationToken.None);
        }
        services.Timeline(incidentId, "notification", $"Notified {sentPeople} affected people and {sentOwners} workspace owners ({withoutAddress} without a verified address).");
        await services.Db.SaveChangesAsync(CancellationToken.None);
        await services.Audit.RecordAsync(null, "incident.notified", $"{incidentId}:{sentPeople}p:{sentOwners}o:{withoutAddress}x", ct: CancellationToken.None);
        return TypedResults.Ok(new NotifyResult(sentPeople, sentOwners, withoutAddress));
    }
}
