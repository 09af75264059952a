using System.Security.Cryptography;
using System.Text;

namespace ClippyBot.Api.Encryption;

/// <summary>
/// Where a ciphertext belongs: it is the associated data of the encryption, so a ciphertext copied into another row,
/// column, table or workspace fails to decrypt (docs/encryption.md).
/// </summary>
public readonly record struct EnvelopeContext(string Table, string Column, Guid RowId, Guid WorkspaceId)
{
    public byte[] ToAssociatedData() => Encoding.UTF8.GetBytes($"clippybot-api/v1/{Table}/{Column}/{RowId:N}/{WorkspaceId:N}");
}

/// <summary>
/// The envelope format, version 1 — <c>version(1) = 0x01 | data key id(16, Guid bytes) | nonce(12) | tag(16) | ciphertext</c>.
/// AES-256-GCM with a random 96-bit nonce per message; associated data = version, key id and the <see cref="EnvelopeContext"/>. The key id says which data key to unwrap, so old ciphertexts stay
/// readable after rotation.
/// </summary>
public static class Envelope
{
    public const byte Version = 1;
    public const int HeaderSize = 1 + 16 + NonceSize + TagSize;
    private const int NonceSize = 12;
    private const int TagSize = 16;

    public static byte[] Seal(Guid keyId, byte[] key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        ArgumentNullException.ThrowIfNull(key);
        var output = new byte[HeaderSize + plaintext.Length];
        output[0] = Version;
        keyId.TryWriteBytes(output.AsSpan(1, 16));
        var nonce = output.AsSpan(17, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(HeaderSize), output.AsSpan(17 + NonceSize, TagSize), Authenticated(output, associatedData));
        return output;
    }

    public static byte[] Open(byte[] key, ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> associatedData)
    {
        ArgumentNullException.ThrowIfNull(key);
        KeyIdOf(envelope);
        var plaintext = new byte[envelope.Length - HeaderSize];
        using var aes = new AesGcm(key, TagSize);
        aes.Decrypt(envelope.Slice(17, NonceSize), envelope[HeaderSize..], envelope.Slice(17 + NonceSize, TagSize), plaintext, Authenticated(envelope, associatedData));
        return plaintext;
    }

    /// <summary>Version and key id are authenticated too: the associated data is <c>version | key id | context</c>.</summary>
    private static byte[] Authenticated(ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> context) => [.. envelope[..17], .. context];

    /// <summary>The data key an envelope was sealed with; throws on anything that is not a version-1 envelope.</summary>
    public static Guid KeyIdOf(ReadOnlySpan<byte> envelope) =>
        envelope.Length >= HeaderSize && envelope[0] == Version
            ? new Guid(envelope.Slice(1, 16))
            : throw new CryptographicException("Not a ClippyBot envelope (unknown version or too short).");

    /// <summary>Wraps a data key under the KEK; the associated data binds it to its id and KEK id.</summary>
    internal static byte[] WrapKey(byte[] kek, string kekId, Guid keyId, byte[] dataKey) =>
        Seal(keyId, kek, dataKey, WrapContext(kekId, keyId));

    internal static byte[] UnwrapKey(byte[] kek, string kekId, Guid keyId, byte[] wrapped) =>
        Open(kek, wrapped, WrapContext(kekId, keyId));

    /// <summary>Wraps a person's own key (see Privacy/SubjectKeys); bound to the subject as well as the key id.</summary>
    internal static byte[] WrapSubjectKey(byte[] kek, string kekId, string subject, Guid keyId, byte[] subjectKey) =>
        Seal(keyId, kek, subjectKey, SubjectWrapContext(kekId, subject, keyId));

    internal static byte[] UnwrapSubjectKey(byte[] kek, string kekId, string subject, Guid keyId, byte[] wrapped) =>
        Open(kek, wrapped, SubjectWrapContext(kekId, subject, keyId));

    private static byte[] SubjectWrapContext(string kekId, string subject, Guid keyId) =>
        Encoding.UTF8.GetBytes($"clippybot-api/subject-key/{kekId}/{subject}/{keyId:N}");

    private static byte[] WrapContext(string kekId, Guid keyId) => Encoding.UTF8.GetBytes($"clippybot-api/data-key/{kekId}/{keyId:N}");
}
