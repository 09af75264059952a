using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;

namespace ClippyBot.Security;

/// <summary>
/// The one generator of bearer secrets (API keys, client secrets, invitation and export links): 256 bits from the OS
/// generator, base64url without padding, so it survives URLs, headers and shells unchanged.
/// </summary>
public static class RandomTokens
{
    public const int DefaultBytes = 32;

    public static string New(int bytes = DefaultBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bytes, 16);
        return Base64Url.EncodeToString(RandomNumberGenerator.GetBytes(bytes));
    }

    /// <summary>
    /// The digest under which a token is stored and looked up (SHA-256). A token holds 256 random bits, so its unkeyed digest
    /// cannot be reversed or guessed; a database reader learns nothing they could present.
    /// </summary>
    public static byte[] LookupHash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));
}
