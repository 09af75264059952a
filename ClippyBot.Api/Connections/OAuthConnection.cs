namespace ClippyBot.Api.Connections;

/// <summary>
/// A workspace's OAuth 2.0 connection to a third-party service. The tokens are stored only as envelopes (AES-256-GCM, bound to
/// this row, column and workspace); <see cref="KeyId"/> repeats their data key id so rotation finds rows still on an old key.
/// </summary>
public sealed class OAuthConnection
{
    public Guid Id { get; set; }

    public Guid WorkspaceId { get; set; }

    public required string Provider { get; set; }

    public List<string> Scopes { get; set; } = [];

    public DateTimeOffset? ExpiresAt { get; set; }

    public required byte[] AccessToken { get; set; }

    public byte[]? RefreshToken { get; set; }

    public Guid KeyId { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public required string CreatedBy { get; set; }
}
