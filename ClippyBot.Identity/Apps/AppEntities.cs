namespace ClippyBot.Identity.Apps;

/// <summary>
/// An app registered at run time (a developer's page or RFC 7591): who owns it and its state. Its OpenID Connect side —
/// redirect URIs, permissions, secret hash, token lifetimes — is OpenIddict's application row with the same client id.
/// Clients seeded from configuration (the platform's own) have no row here.
/// </summary>
public sealed class RegisteredApp
{
    public required string ClientId { get; set; }

    public Guid OwnerId { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>Marked by a platform administrator: no consent page, and unverified addresses may sign in to it.</summary>
    public bool FirstParty { get; set; }

    public DateTimeOffset? SuspendedAt { get; set; }

    public string? SuspendReason { get; set; }

    /// <summary>Deleted: disabled for ever (the client id is never given out again); the row stays for the record.</summary>
    public DateTimeOffset? DeletedAt { get; set; }

    /// <summary>RFC 7592's registration access token, as its SHA-256 (only for apps registered through <c>/connect/register</c>).</summary>
    public byte[]? RegistrationTokenHash { get; set; }
}

/// <summary>A single-use, expiring token an app developer makes on their page to register one app through RFC 7591.</summary>
public sealed class InitialAccessToken
{
    public Guid Id { get; set; }

    public Guid OwnerId { get; set; }

    public required byte[] Hash { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    public DateTimeOffset? UsedAt { get; set; }
}

/// <summary>A person's consent to a third-party app: the scopes granted, remembered until they disconnect it.</summary>
public sealed class AppConsent
{
    public Guid UserId { get; set; }

    public required string ClientId { get; set; }

    /// <summary>Space-separated, sorted.</summary>
    public required string Scopes { get; set; }

    public DateTimeOffset GrantedAt { get; set; }
}

/// <summary>Identity's record of every change to a registered app: who, what, when, from where, and the outcome.</summary>
public sealed class AppAuditEntry
{
    public long Id { get; set; }

    public DateTimeOffset At { get; set; }

    /// <summary>The person who acted (developer or administrator); null for a registration access token's holder.</summary>
    public Guid? ActorId { get; set; }

    public required string ClientId { get; set; }

    public required string Action { get; set; }

    public string Outcome { get; set; } = "success";

    public string Detail { get; set; } = "";

    public string IpAddress { get; set; } = "";
}
