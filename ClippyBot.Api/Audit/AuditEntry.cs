namespace ClippyBot.Api.Audit;

/// <summary>
/// One security event: who (actor), what (action, target), when, from where, outcome. Entries of one workspace form a
/// keyed hash chain: <see cref="Hash"/> = HMAC-SHA-256 under a key the database never holds (previous hash ‖ canonical
/// form of this entry), so editing, removing or reordering any entry breaks every link after it, and nobody who can only
/// write the table can forge a consistent replacement. Chain heads are anchored in Identity (see AuditAnchoring). The
/// table also refuses UPDATE and DELETE (trigger).
/// </summary>
public sealed class AuditEntry
{
    /// <summary>Column bounds; <see cref="AuditLog"/> truncates longer values with a marker rather than fail to record.</summary>
    public const int ActorIdLength = 100;
    public const int ActionLength = 64;
    public const int TargetLength = 200;
    public const int OutcomeLength = 16;

    public long Id { get; set; }

    /// <summary>True for entries chained with the key; false only for entries written before the chain was keyed, which
    /// may never follow a keyed one.</summary>
    public bool Keyed { get; set; }

    /// <summary>The chain this entry belongs to: a workspace, or <see cref="Guid.Empty"/> for platform events.</summary>
    public Guid ChainId { get; set; }

    public DateTimeOffset At { get; set; }

    /// <summary><c>user</c>, <c>api_key</c> or <c>system</c>.</summary>
    public required string ActorType { get; set; }

    public required string ActorId { get; set; }

    public required string Action { get; set; }

    public string Target { get; set; } = "";

    /// <summary><c>success</c> or <c>denied</c>.</summary>
    public required string Outcome { get; set; }

    /// <summary>In the clear only for API-key and system actors; a person's address is in <see cref="IpSealed"/>.</summary>
    public string IpAddress { get; set; } = "";

    /// <summary>
    /// A person's address sealed under their own key (Privacy/SubjectKeys): the entry can never be changed, so erasure
    /// destroys the key instead. The chain hashes the ciphertext, so it still verifies after the key is gone.
    /// </summary>
    public byte[]? IpSealed { get; set; }

    public required byte[] PreviousHash { get; set; }

    public required byte[] Hash { get; set; }
}
