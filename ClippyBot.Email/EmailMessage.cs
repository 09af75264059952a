namespace ClippyBot.Email;

/// <summary>
/// One message, always in both text and HTML. <see cref="Kind"/> names the template for logs and metrics — the subject and
/// bodies may carry single-use links and are never logged.
/// </summary>
public sealed record EmailMessage(string To, string Kind, string Subject, string Text, string Html)
{
    /// <summary>The house layout of every ClippyBot mail: a lead, one action link, a footer (one home for its HTML encoding).</summary>
    public static EmailMessage WithAction(string to, string kind, string subject, string lead, string actionLabel, string actionUrl, string footer)
    {
        var html = System.Text.Encodings.Web.HtmlEncoder.Default;
        return new EmailMessage(to, kind, subject,
            $"{lead}\n\n{actionLabel}: {actionUrl}\n\n{footer}\n\n— ClippyBot\n",
            $"""
            <!DOCTYPE html><html lang="en"><body style="font-family:sans-serif;line-height:1.5">
            <p>{html.Encode(lead)}</p>
            <p><a href="{html.Encode(actionUrl)}">{html.Encode(actionLabel)}</a></p>
            <p style="color:#555">{html.Encode(footer)}</p>
            <p>— ClippyBot</p>
            </body></html>
            """);
    }

    /// <summary>The house layout without an action: paragraphs of notice (each HTML-encoded: they may quote what others wrote).</summary>
    public static EmailMessage Notice(string to, string kind, string subject, params IReadOnlyList<string> paragraphs)
    {
        ArgumentNullException.ThrowIfNull(paragraphs);
        var html = System.Text.Encodings.Web.HtmlEncoder.Default;
        return new EmailMessage(to, kind, subject,
            string.Join("\n\n", paragraphs) + "\n\n— ClippyBot\n",
            "<!DOCTYPE html><html lang=\"en\"><body style=\"font-family:sans-serif;line-height:1.5\">"
            + string.Concat(paragraphs.Select(p => $"<p>{html.Encode(p)}</p>")) + "<p>— ClippyBot</p></body></html>");
    }
}
