namespace ClippyBot.Email;

/// <summary>How outgoing mail is delivered (section <c>Email</c>). The AppHost points it at its development mail server.</summary>
public sealed class EmailOptions
{
    public const string SectionName = "Email";

    /// <summary>SMTP host; empty = email is not configured and the service refuses to start when it needs to send.</summary>
    public string Host { get; set; } = "";

    public int Port { get; set; } = 587;

    /// <summary><c>StartTls</c> (default, required), <c>Implicit</c> (port 465) or <c>None</c> (only for a local development server).</summary>
    public SmtpSecurity Security { get; set; } = SmtpSecurity.StartTls;

    public string UserName { get; set; } = "";

    public string Password { get; set; } = "";

    public string FromAddress { get; set; } = "no-reply@clippybot.dev";

    public string FromName { get; set; } = "ClippyBot";

    /// <summary>Attempts per message before it is given up (logged as an error without its content).</summary>
    public int MaxAttempts { get; set; } = 6;

    /// <summary>Delay before the first retry; doubles each time, with jitter.</summary>
    public TimeSpan FirstRetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Durable outbox: most messages one recipient is sent per hour, whatever asks for them (the rest are refused, logged and counted).</summary>
    public int MaxPerRecipientPerHour { get; set; } = 20;
}

public enum SmtpSecurity
{
    StartTls,
    Implicit,
    None,
}
