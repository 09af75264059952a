using ClippyBot.Email;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Workspaces;

/// <summary>Configuration section <c>Invitations</c>.</summary>
public sealed class InvitationOptions
{
    public const string SectionName = "Invitations";

    /// <summary>The web app's page that accepts an invitation; the emailed link is this URL with <c>?token=…</c>.</summary>
    public string AcceptUrl { get; set; } = "http://localhost:5173/invitations/accept";
}

/// <summary>
/// The invitation goes to the invited address only: the token is never returned to the inviter, so only someone who
/// reads that mailbox (and signs in with that verified address) can join.
/// </summary>
public sealed class InvitationMail(EmailOutbox outbox, IOptions<InvitationOptions> options)
{
    public void Send(string to, string workspaceName, WorkspaceRole role, string token, DateTimeOffset expiresAt)
    {
        var link = $"{options.Value.AcceptUrl}?token={Uri.EscapeDataString(token)}";
        var roleName = role.ToString().ToLowerInvariant();
        var lead = $"You are invited to join the workspace \"{workspaceName}\" on ClippyBot as {roleName}.";
        var footer = $"Sign in with this address to accept. The invitation works once and expires on {expiresAt.UtcDateTime:yyyy-MM-dd HH:mm} UTC. If you did not expect it, ignore this message.";
        outbox.TryEnqueue(EmailMessage.WithAction(to, "workspace-invitation", $"Invitation to {workspaceName} on ClippyBot",
            lead, "Accept the invitation", link, footer));
    }
}
