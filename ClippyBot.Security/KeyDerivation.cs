using System.Security.Cryptography;
using System.Text;

namespace ClippyBot.Security;

/// <summary>
/// The one key derivation: HKDF-SHA-256 (RFC 5869) of a configured secret, one 32-byte key per purpose. The info string
/// <c>{scope}/{purpose}</c> separates keys: a key derived for one purpose or service is useless for another.
/// </summary>
public static class KeyDerivation
{
    public const int KeySize = 32;

    /// <summary>The key for <paramref name="purpose"/> of <paramref name="scope"/> (e.g. <c>clippybot-api</c>, <c>kek</c>).</summary>
    public static byte[] DeriveKey(string secret, string scope, string purpose)
    {
        ArgumentException.ThrowIfNullOrEmpty(secret);
        ArgumentException.ThrowIfNullOrEmpty(scope);
        ArgumentException.ThrowIfNullOrEmpty(purpose);
        return Hkdf(Encoding.UTF8.GetBytes(secret), salt: [], Encoding.UTF8.GetBytes($"{scope}/{purpose}"), KeySize);
    }

    /// <summary>Plain HKDF-SHA-256 (extract, then expand), as in RFC 5869 and its test vectors.</summary>
    internal static byte[] Hkdf(byte[] inputKeyMaterial, byte[] salt, byte[] info, int length) =>
        HKDF.DeriveKey(HashAlgorithmName.SHA256, inputKeyMaterial, length, salt, info);
}
