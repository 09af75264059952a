using ClippyBot.Api.Workspaces;

namespace ClippyBot.Api.ApiKeys;

/// <summary>
/// A workspace API key. The key itself (<c>cbk_{PublicId}_{secret}</c>) is shown once; only an HMAC of it under a server
/// key is stored, so a database leak yields nothing that authenticates.
/// </summary>
public sealed class ApiKey
{
    public Guid Id { get; set; }

    public Guid WorkspaceId { get; set; }

    /// <summary>Lookup handle embedded in the key (not secret).</summary>
    public required string PublicId { get; set; }

    public required string Name { get; set; }

    public required byte[] SecretHash { get; set; }

    public List<Permission> Scopes { get; set; } = [];

    public required string CreatedBy { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset? ExpiresAt { get; set; }

    public DateTimeOffset? RevokedAt { get; set; }

    public DateTimeOffset? LastUsedAt { get; set; }

    public string? LastUsedIp { get; set; }
}
