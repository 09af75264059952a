using ClippyBot.Security;
using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace ClippyBot.Api.ApiKeys;

/// <summary>
/// Format and keyed hash of API keys: <c>cbk_</c> + 16-character public id + <c>_</c> + 43-character secret (256 bits,
/// base64url). The <c>cbk_</c> prefix lets secret scanners recognise leaked keys.
/// </summary>
public sealed partial class ApiKeySecrets(byte[] hashKey)
{
    public const string Prefix = "cbk_";

    public static ApiKeySecrets FromConfiguredSecret(string secret) =>
        new(KeyDerivation.DeriveKey(secret, "clippybot-api", "api-keys"));

    public static (string PublicId, string Key) NewKey()
    {
        var publicId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var secret = RandomTokens.New();
        return (publicId, $"{Prefix}{publicId}_{secret}");
    }

    public static bool TryGetPublicId(string? key, out string publicId)
    {
        var match = key is null ? Match.Empty : KeyFormat().Match(key);
        publicId = match.Success ? match.Groups[1].Value : "";
        return match.Success;
    }

    public byte[] Hash(string key) => KeyedHash.Compute(hashKey, key);

    public bool Verify(string key, byte[] stored) => KeyedHash.Verify(hashKey, key, stored);

    [GeneratedRegex("^cbk_([0-9a-f]{16})_[A-Za-z0-9_-]{43}$")]
    private static partial Regex KeyFormat();
}
