namespace ClippyBot.Api.Workspaces;

public sealed class Workspace
{
    public Guid Id { get; set; }

    public required string Name { get; set; }

    /// <summary>Owners and admins must sign in with a second factor (token <c>amr</c> containing <c>mfa</c>).</summary>
    public bool RequireMfaForAdmins { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>
    /// Bytes of file storage in use or reserved by uploads in progress: uploads reserve against it with one conditional
    /// update before they stream, so concurrent uploads cannot each see the same free space.
    /// </summary>
    public long StorageBytes { get; set; }

    public List<Membership> Members { get; set; } = [];
}

public sealed class Membership
{
    public Guid WorkspaceId { get; set; }

    public Workspace Workspace { get; set; } = null!;

    /// <summary>The member's subject (<c>sub</c>) at Identity.</summary>
    public required string UserId { get; set; }

    public string Email { get; set; } = "";

    public WorkspaceRole Role { get; set; }

    public DateTimeOffset JoinedAt { get; set; }
}

/// <summary>A single-use invitation; only the SHA-256 of its random token is stored.</summary>
public sealed class Invitation
{
    public Guid Id { get; set; }

    public Guid WorkspaceId { get; set; }

    public required string Email { get; set; }

    public WorkspaceRole Role { get; set; }

    public required byte[] TokenHash { get; set; }

    public required string InvitedBy { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }

    public DateTimeOffset? AcceptedAt { get; set; }
}
