using ClippyBot.Api.Containment;
using ClippyBot.Api.Data;
using ClippyBot.Email;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Detection;

/// <summary>
/// Mails every platform administrator (their verified addresses, from Identity) once per alert. A replica claims an alert
/// (sets <see cref="SecurityAlert.MailedAt"/> only where it is still empty) before it sends, so replicas never mail twice;
/// when Identity cannot be asked or the outbox is full the claim is given back and the next round tries again.
/// </summary>
public sealed partial class AlertMail(ApiDbContext db, IdentityServiceClient identity, EmailOutbox outbox, TimeProvider time,
    IOptions<DetectionOptions> options, ILogger<AlertMail> logger)
{
    /// <summary>Alerts older than this when first seen unmailed (Identity was away a long while) are not mailed any more.</summary>
    public static readonly TimeSpan MailWithin = TimeSpan.FromHours(24);

    public async Task<int> SendPendingAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var since = now - MailWithin;
        var pending = await db.SecurityAlerts.AsNoTracking().Where(a => a.MailedAt == null && a.FirstSeen >= since).OrderBy(a => a.FirstSeen).Take(50).ToListAsync(ct);
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
        var sent = 0;
        foreach (var alert in pending)
        {
            if (await db.SecurityAlerts.Where(a => a.Id == alert.Id && a.MailedAt == null)
                    .ExecuteUpdateAsync(s => s.SetProperty(a => a.MailedAt, now).SetProperty(a => a.MailedTo, recipients.Count), ct) == 0)
            {
                continue; // another replica has it
            }
            if (!recipients.All(to => outbox.TryEnqueue(Message(to, alert))))
            {
                await db.SecurityAlerts.Where(a => a.Id == alert.Id).ExecuteUpdateAsync(s => s.SetProperty(a => a.MailedAt, (DateTimeOffset?)null), ct);
                return sent;
            }
            sent += recipients.Count;
        }
        return sent;
    }

    private EmailMessage Message(string to, SecurityAlert alert)
    {
        var subject = alert.Subject == SecurityAlert.PlatformSubject ? "the platform" : alert.Subject;
        var paragraphs = new List<string>
        {
            $"The rule \"{alert.Rule}\" fired for {subject}: {alert.Count} occurrences in {alert.WindowMinutes} minutes (threshold {alert.Threshold}).",
            alert.Description,
            $"First seen {alert.FirstSeen.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC. You will not get another mail for this episode; the alert stays open while the rule keeps firing.",
        };
        if (options.Value.PublicBaseUrl is { Length: > 0 } baseUrl)
        {
            paragraphs.Add($"Details: {baseUrl.TrimEnd('/')}/api/admin/alerts/{alert.Id}");
        }
        return EmailMessage.Notice(to, "security-alert", $"[{alert.Severity}] ClippyBot security alert: {alert.Rule}", paragraphs);
    }

    [LoggerMessage(1, LogLevel.Warning, "Security alert mail postponed: the administrators' addresses could not be read ({Error})")]
    private static partial void LogNoRecipients(ILogger logger, string error);
}
