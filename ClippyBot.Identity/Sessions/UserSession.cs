namespace ClippyBot.Identity.Sessions;

/// <summary>
/// One login of one user into one client: the OpenIddict authorization that every token of the login hangs off,
/// plus what the user needs to recognise it (client, device, address, times).
/// </summary>
public sealed class UserSession
{
    public Guid Id { get; set; }

    public Guid UserId { get; set; }

    public required string ClientId { get; set; }

    public required string AuthorizationId { get; set; }

    /// <summary>The browser sign-in (<c>bsid</c>) the login came from: its silent renewals reuse this session.</summary>
    public string? BrowserSessionId { get; set; }

    public string UserAgent { get; set; } = "";

    public string IpAddress { get; set; } = "";

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset LastSeenAt { get; set; }

    public DateTimeOffset? EndedAt { get; set; }
}
