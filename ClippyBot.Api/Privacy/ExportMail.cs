using ClippyBot.Email;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Privacy;

/// <summary>The mail with the time-limited download link; it goes to the account's verified address only.</summary>
public sealed class ExportMail(EmailOutbox outbox, IOptions<PrivacyOptions> options)
{
    public void Send(string to, Guid exportId, string token, DateTimeOffset expiresAt)
    {
        var link = $"{options.Value.PublicBaseUrl.TrimEnd('/')}/api/exports/{exportId}/download?token={Uri.EscapeDataString(token)}";
        var lead = "The copy of your personal data that you asked ClippyBot for is ready.";
        var footer = $"Anyone with this link can download it until {expiresAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC, when it is deleted. "
                     + "If you did not ask for it, sign in and change your password.";
        outbox.TryEnqueue(EmailMessage.WithAction(to, "personal-data-export", "Your ClippyBot data export is ready",
            lead, "Download your data", link, footer));
    }
}
