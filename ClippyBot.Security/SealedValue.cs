using System.Security.Cryptography;

namespace ClippyBot.Security;

/// <summary>
/// The one sealed-value format for secrets and data at rest (docs/encryption.md):
/// <c>version(1) | key id(16) | nonce(12) | tag(16) | ciphertext</c>, AES-256-GCM with a random 96-bit nonce per value.
/// The associated data is <c>version | key id | context</c>: the header cannot be edited, and a value copied to another
/// row, column, purpose or tenant (another context) does not open.
/// <para>Version 2 is written. Version 1 is the same layout and rule — the Api's envelope before the formats were
/// unified — and opens unchanged. Services that sealed with the older key-only layout (<see cref="KeyProtector"/>) read it
/// through their own legacy path: its first byte was 1 as well, which is why the unified format starts at 2.</para>
/// </summary>
public static class SealedValue
{
    public const byte Version = 2;
    public const byte EnvelopeVersion1 = 1;
    public const int HeaderSize = 1 + KeyIdSize + NonceSize + TagSize;
    private const int KeyIdSize = 16;
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int NonceOffset = 1 + KeyIdSize;
    private const int TagOffset = NonceOffset + NonceSize;

    public static byte[] Seal(Guid keyId, byte[] key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> context) =>
        Seal(keyId, key, plaintext, context, RandomNumberGenerator.GetBytes(NonceSize));

    /// <summary>With a given nonce: for the published-vector tests only (a nonce must never repeat under a key).</summary>
    internal static byte[] Seal(Guid keyId, byte[] key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> context, ReadOnlySpan<byte> nonce)
    {
        ArgumentNullException.ThrowIfNull(key);
        var output = new byte[HeaderSize + plaintext.Length];
        output[0] = Version;
        keyId.TryWriteBytes(output.AsSpan(1, KeyIdSize));
        nonce.CopyTo(output.AsSpan(NonceOffset, NonceSize));
        Aes256Gcm.Encrypt(key, nonce, plaintext, AssociatedData(output, context), output.AsSpan(HeaderSize), output.AsSpan(TagOffset, TagSize));
        return output;
    }

    /// <summary>Opens a value sealed under <paramref name="key"/> for <paramref name="context"/>; throws <see cref="CryptographicException"/> otherwise.</summary>
    public static byte[] Open(byte[] key, ReadOnlySpan<byte> sealedValue, ReadOnlySpan<byte> context)
    {
        ArgumentNullException.ThrowIfNull(key);
        KeyIdOf(sealedValue);
        var plaintext = new byte[sealedValue.Length - HeaderSize];
        Aes256Gcm.Decrypt(key, sealedValue.Slice(NonceOffset, NonceSize), sealedValue[HeaderSize..], sealedValue.Slice(TagOffset, TagSize),
            AssociatedData(sealedValue, context), plaintext);
        return plaintext;
    }

    /// <summary>The key a value was sealed with (which data key to unwrap after rotations); throws on anything that is not a sealed value.</summary>
    public static Guid KeyIdOf(ReadOnlySpan<byte> sealedValue) =>
        IsSealedValue(sealedValue)
            ? new Guid(sealedValue.Slice(1, KeyIdSize))
            : throw new CryptographicException("Not a ClippyBot sealed value (unknown version or too short).");

    public static bool IsSealedValue(ReadOnlySpan<byte> value) =>
        value.Length >= HeaderSize && value[0] is Version or EnvelopeVersion1;

    private static byte[] AssociatedData(ReadOnlySpan<byte> sealedValue, ReadOnlySpan<byte> context) => [.. sealedValue[..NonceOffset], .. context];
}

/// <summary>The AES-256-GCM call every sealed format goes through (96-bit nonce, 128-bit tag), checked against NIST's GCM vectors.</summary>
internal static class Aes256Gcm
{
    public const int TagSize = 16;

    public static void Encrypt(byte[] key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> ciphertext, Span<byte> tag)
    {
        RequireKey(key);
        using var aes = new AesGcm(key, TagSize);
        aes.Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
    }

    public static void Decrypt(byte[] key, ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, ReadOnlySpan<byte> associatedData, Span<byte> plaintext)
    {
        RequireKey(key);
        using var aes = new AesGcm(key, TagSize);
        aes.Decrypt(nonce, ciphertext, tag, plaintext, associatedData);
    }

    // AES-128 and AES-192 keys are valid for AesGcm; the promise is AES-256, so anything else is a programming error.
    private static void RequireKey(byte[] key)
    {
        if (key.Length != 32)
        {
            throw new ArgumentException("An AES-256 key is 32 bytes.", nameof(key));
        }
    }
}
