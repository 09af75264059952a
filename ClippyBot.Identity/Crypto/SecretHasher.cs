using ClippyBot.Security;
using System.Security.Cryptography;

namespace ClippyBot.Identity.Crypto;

/// <summary>
/// Keyed hash (HMAC-SHA-256 under a server key) for high-entropy random secrets such as client secrets: a slow KDF
/// adds nothing to a 256-bit random value, while a database leak without the key yields nothing usable.
/// </summary>
public sealed class SecretHasher
{
    private const string Prefix = "hmac-sha256$";
    private readonly byte[] _key;

    public SecretHasher(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length < 32)
        {
            throw new ArgumentException("The secret-hashing key must be at least 32 bytes.", nameof(key));
        }
        _key = key.ToArray();
    }

    /// <summary>A new secret with 256 bits of entropy, base64url without padding.</summary>
    public static string NewSecret() => RandomTokens.New();

    public string Hash(string secret) => Prefix + Convert.ToBase64String(Mac(secret));

    public bool Verify(string secret, string? stored)
    {
        var expected = stored is not null && stored.StartsWith(Prefix, StringComparison.Ordinal)
            ? TryDecode(stored[Prefix.Length..])
            : null;
        // Always compute the MAC, so a missing or malformed hash costs the same as a wrong secret.
        var actual = Mac(secret);
        return expected is not null && CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    /// <summary>The keyed hash itself, for finding a row by its secret (single-use tokens, recovery codes).</summary>
    public byte[] Fingerprint(string secret) => Mac(secret);

    private byte[] Mac(string secret) => KeyedHash.Compute(_key, secret);

    private static byte[]? TryDecode(string text)
    {
        try
        {
            return Convert.FromBase64String(text);
        }
        catch (FormatException)
        {
            return null;
        }
    }
}
