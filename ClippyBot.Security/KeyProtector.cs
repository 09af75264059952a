using System.Security.Cryptography;
using System.Text;

namespace ClippyBot.Security;

/// <summary>
/// Seals small secrets (signing keys, TOTP secrets, the Data Protection key ring, queued mail) under one key-encryption key
/// of a service, in the one <see cref="SealedValue"/> format. The context is <c>{scope}/{purpose}/{id}</c>: a sealed key
/// copied onto another row, or into another service, does not open. The key id in the header is derived from the key, so
/// a value sealed under another key (another deployment, a changed secret) is named as such instead of failing as tampering.
/// </summary>
public sealed class KeyProtector
{
    /// <summary>The layout before <see cref="SealedValue"/>: <c>1 | nonce(12) | tag(16) | ciphertext</c>, associated data = context only.</summary>
    private const byte LegacyVersion = 1;
    private const int LegacyHeaderSize = 1 + 12 + 16;

    private readonly byte[] _kek;
    private readonly string _scope;

    /// <param name="scope">Prefix of the context (e.g. <c>clippybot-identity</c>): a sealed value of one service never opens in another.</param>
    public KeyProtector(byte[] keyEncryptionKey, string scope)
    {
        ArgumentException.ThrowIfNullOrEmpty(scope);
        ArgumentNullException.ThrowIfNull(keyEncryptionKey);
        if (keyEncryptionKey.Length != KeyDerivation.KeySize)
        {
            throw new ArgumentException("The key-encryption key must be 32 bytes (AES-256).", nameof(keyEncryptionKey));
        }
        _scope = scope;
        _kek = keyEncryptionKey.ToArray();
        KeyId = new Guid(KeyedHash.Compute(_kek, "clippybot/key-id").AsSpan(0, 16));
    }

    /// <summary>Names the key without revealing it (a keyed hash of a fixed label).</summary>
    public Guid KeyId { get; }

    public byte[] Seal(ReadOnlySpan<byte> plaintext, string purpose, string id) => SealedValue.Seal(KeyId, _kek, plaintext, Context(purpose, id));

    /// <summary>Opens a value in the current format, or one sealed in the legacy layout before the formats were unified.</summary>
    public byte[] Open(ReadOnlySpan<byte> sealedKey, string purpose, string id)
    {
        if (IsLegacy(sealedKey))
        {
            return OpenLegacy(sealedKey, Context(purpose, id));
        }
        if (SealedValue.KeyIdOf(sealedKey) != KeyId)
        {
            throw new CryptographicException("The value was sealed under another key-encryption key.");
        }
        return SealedValue.Open(_kek, sealedKey, Context(purpose, id));
    }

    /// <summary>True for a value in the legacy layout; re-seal it with <see cref="Seal"/> to move it to the current format.</summary>
    public static bool IsLegacy(ReadOnlySpan<byte> sealedKey) => sealedKey.Length >= LegacyHeaderSize && sealedKey[0] == LegacyVersion;

    private byte[] OpenLegacy(ReadOnlySpan<byte> sealedKey, byte[] context)
    {
        var plaintext = new byte[sealedKey.Length - LegacyHeaderSize];
        Aes256Gcm.Decrypt(_kek, sealedKey.Slice(1, 12), sealedKey[LegacyHeaderSize..], sealedKey.Slice(13, 16), context, plaintext);
        return plaintext;
    }

    private byte[] Context(string purpose, string id) => Encoding.UTF8.GetBytes($"{_scope}/{purpose}/{id}");
}
