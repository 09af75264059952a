namespace ClippyBot.Registry.Versions;

/// <summary>Someone who publishes plugins: a person (by their Identity subject) or the platform itself (first-party).</summary>
public sealed class Publisher
{
    public Guid Id { get; set; }
    public string Name { get; set; } = "";
    public string? SubjectId { get; set; }
    public bool FirstParty { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>A publisher's Ed25519 signing key (raw public key; the id is the bundle format's 16-hex key id).</summary>
public sealed class PublisherKey
{
    public string KeyId { get; set; } = "";
    public Guid PublisherId { get; set; }
    public byte[] PublicKey { get; set; } = [];
    public DateTimeOffset AddedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

/// <summary>A reverse-DNS plugin id prefix a publisher owns: only they may submit ids under it.</summary>
public sealed class PluginNamespace
{
    public string Prefix { get; set; } = "";
    public Guid PublisherId { get; set; }
    public DateTimeOffset ClaimedAt { get; set; }
}

public enum VersionStatus
{
    /// <summary>Passed the automated checks; waits for review.</summary>
    InReview,
    /// <summary>A check failed or a reviewer said no.</summary>
    Rejected,
    /// <summary>Listed in the signed targets metadata: PluginHosts may install and run it.</summary>
    Approved,
    /// <summary>Withdrawn after approval: gone from targets, and every PluginHost stops running it.</summary>
    Yanked,
}

/// <summary>A submitted bundle and what became of it.</summary>
public sealed class PluginVersion
{
    public Guid Id { get; set; }
    public string PluginId { get; set; } = "";
    public string Version { get; set; } = "";
    public Guid PublisherId { get; set; }
    public string SignerKeyId { get; set; } = "";
    public byte[] Bundle { get; set; } = [];
    public string Sha256 { get; set; } = "";
    public long Length { get; set; }
    public VersionStatus Status { get; set; }
    /// <summary>The automated checks' results (JSON: one entry per check, passed or not, with the reason).</summary>
    public string ChecksJson { get; set; } = "[]";
    /// <summary>The permissions the manifest requests (JSON), listed in targets for the Api's catalog.</summary>
    public string PermissionsJson { get; set; } = "[]";
    public string? DecisionNote { get; set; }
    public DateTimeOffset SubmittedAt { get; set; }
    public DateTimeOffset? DecidedAt { get; set; }
    public DateTimeOffset? YankedAt { get; set; }
    public string? YankReason { get; set; }
}
