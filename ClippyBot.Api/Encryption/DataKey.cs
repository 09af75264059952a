namespace ClippyBot.Api.Encryption;

/// <summary>
/// A 256-bit data key, stored only wrapped (AES-256-GCM under the KEK named by <see cref="KekId"/>). The newest activated key
/// encrypts new data; older keys stay until no ciphertext refers to them.
/// </summary>
public sealed class DataKey
{
    public Guid Id { get; set; }

    public required string KekId { get; set; }

    public required byte[] WrappedKey { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>Progress of one re-encryption run towards <see cref="TargetKeyId"/>; the cursor makes it resumable after a crash.</summary>
public sealed class ReencryptionRun
{
    public Guid Id { get; set; }

    public Guid TargetKeyId { get; set; }

    /// <summary>Which kind of rows the cursor walks now (see <see cref="IReencryptable.Name"/>); runs visit them in order.</summary>
    public string Stage { get; set; } = "";

    /// <summary>The last row id finished in <see cref="Stage"/>; the next batch starts after it.</summary>
    public Guid Cursor { get; set; }

    public long Processed { get; set; }

    /// <summary>Rows of the current pass that did not decrypt (corrupted or tampered); logged by id and left as they are.</summary>
    public long Unreadable { get; set; }

    /// <summary>Passes over all rows; a pass is repeated when a replica wrote under the old key meanwhile (at most 3).</summary>
    public int Passes { get; set; } = 1;

    public DateTimeOffset StartedAt { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }
}
