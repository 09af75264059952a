namespace ClippyBot.ServiceDefaults.Email;

/// <summary>
/// One message, always in both text and HTML. <see cref="Kind"/> names the template for logs and metrics — the subject and
/// bodies may carry single-use links and are never logged.
/// </summary>
public sealed record EmailMessage(string To, string Kind, string Subject, string Text, string Html);
