using System.Security.Cryptography;
using System.Text;

namespace ClippyBot.ServiceDefaults.Crypto;

/// <summary>
/// Seals key material at rest with AES-256-GCM under a key-encryption key from configuration. Layout:
/// <c>version(1) | nonce(12) | tag(16) | ciphertext</c>; the associated data binds a ciphertext to its purpose and id,
/// so a sealed key copied onto another row does not open.
/// </summary>
public sealed class KeyProtector
{
    private const byte Version = 1;
    private const int NonceSize = 12;
    private const int TagSize = 16;

    private readonly byte[] _kek;
    private readonly string _scope;

    /// <param name="scope">Prefix of the associated data (e.g. <c>clippybot-identity</c>): a sealed value of one service never opens in another.</param>
    public KeyProtector(byte[] keyEncryptionKey, string scope)
    {
        ArgumentException.ThrowIfNullOrEmpty(scope);
        _scope = scope;
        ArgumentNullException.ThrowIfNull(keyEncryptionKey);
        if (keyEncryptionKey.Length != 32)
        {
            throw new ArgumentException("The key-encryption key must be 32 bytes (AES-256).", nameof(keyEncryptionKey));
        }
        _kek = keyEncryptionKey.ToArray();
    }

    public byte[] Seal(ReadOnlySpan<byte> plaintext, string purpose, string id)
    {
        var output = new byte[1 + NonceSize + TagSize + plaintext.Length];
        output[0] = Version;
        var nonce = output.AsSpan(1, NonceSize);
        RandomNumberGenerator.Fill(nonce);
        using var aes = new AesGcm(_kek, TagSize);
        aes.Encrypt(nonce, plaintext, output.AsSpan(1 + NonceSize + TagSize), output.AsSpan(1 + NonceSize, TagSize), Aad(purpose, id));
        return output;
    }

    public byte[] Open(ReadOnlySpan<byte> sealedKey, string purpose, string id)
    {
        if (sealedKey.Length < 1 + NonceSize + TagSize || sealedKey[0] != Version)
        {
            throw new CryptographicException("Sealed key has an unknown format.");
        }
        var plaintext = new byte[sealedKey.Length - 1 - NonceSize - TagSize];
        using var aes = new AesGcm(_kek, TagSize);
        aes.Decrypt(sealedKey.Slice(1, NonceSize), sealedKey[(1 + NonceSize + TagSize)..], sealedKey.Slice(1 + NonceSize, TagSize), plaintext, Aad(purpose, id));
        return plaintext;
    }

    private byte[] Aad(string purpose, string id) => Encoding.UTF8.GetBytes($"{_scope}/{purpose}/{id}");

    /// <summary>Derives a 32-byte key for one purpose from a configured secret (HKDF-SHA-256, info <c>{scope}/{purpose}</c>).</summary>
    public static byte[] DeriveKey(string secret, string scope, string purpose) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, Encoding.UTF8.GetBytes(secret), 32, info: Encoding.UTF8.GetBytes($"{scope}/{purpose}"));
}
