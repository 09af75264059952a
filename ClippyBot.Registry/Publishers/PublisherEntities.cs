namespace ClippyBot.Registry.Publishers;

/// <summary>A one-time challenge a publisher signs with a new key to prove they hold it (stored as a hash; 10 minutes).</summary>
public sealed class KeyChallenge
{
    public Guid Id { get; set; }
    public Guid PublisherId { get; set; }
    public string ChallengeHash { get; set; } = "";
    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>
/// What happened in the registry, by whom, and whether it was allowed: every action and every refusal. The entries form
/// one keyed hash chain (<see cref="ClippyBot.Security.HashChain"/>, key <c>Registry:AuditChainKey</c>, never in the
/// database), and the table refuses UPDATE, DELETE and TRUNCATE.
/// </summary>
public sealed class RegistryAuditEntry
{
    public long Id { get; set; }
    public DateTimeOffset At { get; set; }
    /// <summary>The person's subject, or "anonymous".</summary>
    public string Actor { get; set; } = "";
    public string Action { get; set; } = "";
    /// <summary>"allowed" or "refused".</summary>
    public string Outcome { get; set; } = "";
    public string Detail { get; set; } = "";
    /// <summary>False only for entries written before the chain existed; none may follow a keyed one.</summary>
    public bool Keyed { get; set; }
    public byte[] PreviousHash { get; set; } = [];
    public byte[] Hash { get; set; } = [];
}
