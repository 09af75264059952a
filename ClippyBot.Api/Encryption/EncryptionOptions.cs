namespace ClippyBot.Api.Encryption;

/// <summary>Configuration section <c>Encryption</c>: the key-encryption key (KEK) that wraps the data keys.</summary>
public sealed class EncryptionOptions
{
    public const string SectionName = "Encryption";

    /// <summary>
    /// A random secret of at least 43 characters (≥ 256 bits) from the secret store (the AppHost generates one for development).
    /// The AES-256 KEK is derived from it with HKDF-SHA-256. It wraps data keys only; it never encrypts data itself.
    /// </summary>
    public string KeyEncryptionKey { get; set; } = "";

    /// <summary>Names the KEK inside every wrapped data key, so a second KEK (or a KMS key) can be introduced beside it.</summary>
    public string KeyEncryptionKeyId { get; set; } = "local-1";

    /// <summary>Rows re-encrypted per transaction by the rotation job.</summary>
    public int ReencryptionBatchSize { get; set; } = 200;

    /// <summary>Pause between batches, to bound the job's load on the database (0 = none).</summary>
    public TimeSpan ReencryptionBatchPause { get; set; } = TimeSpan.Zero;

    /// <summary>How often each replica re-reads which data key is current (after another replica rotated).</summary>
    public TimeSpan KeyRingRefreshInterval { get; set; } = TimeSpan.FromMinutes(1);

    public const int MinimumSecretLength = 43;
}
