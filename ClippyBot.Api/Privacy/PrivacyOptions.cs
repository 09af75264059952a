using ClippyBot.ServiceDefaults.Email;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Privacy;

/// <summary>Configuration section <c>Privacy</c>.</summary>
public sealed class PrivacyOptions
{
    public const string SectionName = "Privacy";

    /// <summary>
    /// The Api's public base address, for the emailed download link. Configured, never taken from the request's Host header
    /// (a forged Host would send the link — and the data — to someone else's server).
    /// </summary>
    public string PublicBaseUrl { get; set; } = "https://localhost:7102";

    /// <summary>How long a finished export can be downloaded; then its document is deleted.</summary>
    public TimeSpan ExportLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often the worker looks for work it was not told about (other replicas' jobs, retries, expiry).</summary>
    public TimeSpan WorkerInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A job taken by a worker that has not finished it after this long is taken again (the worker died).</summary>
    public TimeSpan ClaimTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Attempts before an export is reported failed.</summary>
    public int MaxExportAttempts { get; set; } = 5;
}

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
