using ClippyBot.Api.Containment;
using ClippyBot.Api.Data;
using ClippyBot.Email;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Detection;

/// <summary>
/// Tells every platform administrator (verified, not locked-out addresses, from Identity) about new alerts: one digest
/// per round and administrator, most severe first, through the durable outbox at security-notice priority — never
/// crowded out by other mail, never dropped, and a flood of alerts costs one mail per round, not one per alert (the
/// evaluator also rolls many subjects of one rule into one alert). A replica claims the alerts it mails (sets
/// <see cref="SecurityAlert.MailedAt"/> only where it is still empty) before sending, so replicas never mail twice. When
/// Identity cannot be asked, or names no administrator, the alerts stay unclaimed and the next round tries again.
/// </summary>
public sealed partial class AlertMail(ApiDbContext db, IdentityServiceClient identity, DurableEmailOutbox<ApiDbContext> outbox, TimeProvider time,
    IOptions<DetectionOptions> options, ILogger<AlertMail> logger)
{
    /// <summary>Alerts older than this when first seen unmailed (Identity was away a long while) are not mailed any more.</summary>
    public static readonly TimeSpan MailWithin = TimeSpan.FromHours(24);

    public const int MaxPerDigest = 50;

    public async Task<int> SendPendingAsync(CancellationToken ct)
    {
        // Microseconds, as the database keeps them: the claim is recognised by this exact value.
        var now = time.GetUtcNow();
        now = new DateTimeOffset(now.UtcTicks - now.UtcTicks % 10, TimeSpan.Zero);
        var since = now - MailWithin;
        var pending = await db.SecurityAlerts.AsNoTracking().Where(a => a.MailedAt == null && a.FirstSeen >= since).ToListAsync(ct);
        if (pending.Count == 0)
        {
            return 0;
        }
        IReadOnlyList<string> recipients;
        try
        {
            recipients = await identity.AdministratorAddressesAsync(ct);
        }
        catch (ServiceClients.ServiceUnavailableException e)
        {
            LogNoRecipients(logger, e.Message);
            return 0;
        }
        if (recipients.Count == 0)
        {
            LogNoRecipients(logger, "Identity names no platform administrator with a verified address");
            return 0;
        }
        // Most severe first: a critical alert is never behind a pile of low ones.
        var batch = pending.OrderByDescending(a => Array.IndexOf(DetectionOptions.Severities, a.Severity)).ThenBy(a => a.FirstSeen).Take(MaxPerDigest).ToList();
        var ids = batch.Select(a => a.Id).ToList();
        var claimed = await db.SecurityAlerts.Where(a => ids.Contains(a.Id) && a.MailedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(a => a.MailedAt, now).SetProperty(a => a.MailedTo, recipients.Count), ct);
        if (claimed != batch.Count)
        {
            // Another replica is mailing some of them: let it; this round claims nothing.
            await db.SecurityAlerts.Where(a => ids.Contains(a.Id) && a.MailedAt == now).ExecuteUpdateAsync(s => s.SetProperty(a => a.MailedAt, (DateTimeOffset?)null), ct);
            return 0;
        }
        foreach (var to in recipients)
        {
            // Claimed: queued whatever the round's cancellation says (a half-sent digest would be worse than a late one).
            await outbox.EnqueueAsync(Digest(to, batch), MailPriority.SecurityNotice, CancellationToken.None);
        }
        return recipients.Count;
    }

    private EmailMessage Digest(string to, List<SecurityAlert> alerts)
    {
        var top = alerts[0];
        var subject = alerts.Count == 1
            ? $"[{top.Severity}] ClippyBot security alert: {top.Rule}"
            : $"[{top.Severity}] ClippyBot security alerts: {alerts.Count} new ({string.Join(", ", alerts.Select(a => a.Rule).Distinct().Take(4))})";
        var paragraphs = new List<string>();
        foreach (var alert in alerts)
        {
            var who = alert.Subject == SecurityAlert.PlatformSubject ? "the platform" : alert.Subject;
            paragraphs.Add($"[{alert.Severity}] {alert.Rule} for {who}: {alert.Count} occurrences in {alert.WindowMinutes} minutes (threshold {alert.Threshold}), "
                           + $"first seen {alert.FirstSeen.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC. {alert.Description}"
                           + (options.Value.PublicBaseUrl is { Length: > 0 } baseUrl ? $" Details: {baseUrl.TrimEnd('/')}/api/admin/alerts/{alert.Id}" : ""));
        }
        paragraphs.Add("You will not get another mail for these episodes; each alert stays open while its rule keeps firing. The security console lists them all.");
        return EmailMessage.Notice(to, "security-alert", subject, paragraphs);
    }

    [LoggerMessage(1, LogLevel.Warning, "Security alert mail postponed: {Reason}")]
    private static partial void LogNoRecipients(ILogger logger, string reason);
}
