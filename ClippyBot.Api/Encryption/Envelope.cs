using ClippyBot.Security;
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
/// The Api's use of the one sealed-value format (<see cref="SealedValue"/>, docs/encryption.md): the key id in the header
/// says which data key to unwrap, so old ciphertexts stay readable after rotation; the context is an
/// <see cref="EnvelopeContext"/> for data, or the KEK and key ids for wrapped keys.
/// </summary>
public static class Envelope
{
    public const byte Version = SealedValue.Version;

    public static byte[] Seal(Guid keyId, byte[] key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData) =>
        SealedValue.Seal(keyId, key, plaintext, associatedData);

    public static byte[] Open(byte[] key, ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> associatedData) =>
        SealedValue.Open(key, envelope, associatedData);

    /// <summary>The data key an envelope was sealed with; throws on anything that is not a sealed value.</summary>
    public static Guid KeyIdOf(ReadOnlySpan<byte> envelope) => SealedValue.KeyIdOf(envelope);

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
