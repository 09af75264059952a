using System.Security.Cryptography;
using System.Text;

namespace ClippyBot.Security;

/// <summary>
/// The one keyed hash: HMAC-SHA-256 (RFC 2104, vectors in RFC 4231). Used where a stored digest must be useless without a
/// service's secret: API key and client-secret lookups, mail recipient tags, the audit chain.
/// </summary>
public static class KeyedHash
{
    public static byte[] Compute(ReadOnlySpan<byte> key, ReadOnlySpan<byte> message) => HMACSHA256.HashData(key, message);

    public static byte[] Compute(ReadOnlySpan<byte> key, string message) => Compute(key, Encoding.UTF8.GetBytes(message));

    /// <summary>Compares in constant time, so a caller learns nothing from how long a wrong guess took.</summary>
    public static bool Verify(ReadOnlySpan<byte> key, ReadOnlySpan<byte> message, ReadOnlySpan<byte> expected) =>
        CryptographicOperations.FixedTimeEquals(Compute(key, message), expected);

    public static bool Verify(ReadOnlySpan<byte> key, string message, ReadOnlySpan<byte> expected) =>
        Verify(key, Encoding.UTF8.GetBytes(message), expected);
}
