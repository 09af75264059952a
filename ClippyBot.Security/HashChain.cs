using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace ClippyBot.Security;

/// <summary>
/// The one rule for keyed hash chains (the Api's audit log, the registry's audit log): each entry's hash is
/// HMAC-SHA-256 under a key the database never holds, over the previous entry's hash and the entry's canonical form, so
/// editing, removing or reordering any entry breaks every link after it, and nobody who can only write the table can
/// forge a consistent replacement. The first entry links to <see cref="Genesis"/>.
/// </summary>
public static class HashChain
{
    /// <summary>What the first entry of a chain links to (32 zero bytes; a fresh copy each time).</summary>
    public static byte[] Genesis => new byte[32];

    /// <summary>An entry's canonical form: each field length-prefixed (<c>len:field|</c>), so no two different entries share one.</summary>
    public static string Canonical(params IEnumerable<string> fields)
    {
        ArgumentNullException.ThrowIfNull(fields);
        var canonical = new StringBuilder();
        foreach (var field in fields)
        {
            canonical.Append(field.Length.ToString(CultureInfo.InvariantCulture)).Append(':').Append(field).Append('|');
        }
        return canonical.ToString();
    }

    /// <summary>The hash of an entry whose canonical form is <paramref name="canonical"/>, following <paramref name="previous"/>.</summary>
    public static byte[] Link(ReadOnlySpan<byte> key, ReadOnlySpan<byte> previous, string canonical)
    {
        ArgumentNullException.ThrowIfNull(canonical);
        byte[] message = [.. previous, .. Encoding.UTF8.GetBytes(canonical)];
        return KeyedHash.Compute(key, message);
    }

    /// <summary>Whether <paramref name="hash"/> is the right link (constant time).</summary>
    public static bool Holds(ReadOnlySpan<byte> key, ReadOnlySpan<byte> previous, string canonical, ReadOnlySpan<byte> hash) =>
        CryptographicOperations.FixedTimeEquals(Link(key, previous, canonical), hash);
}
