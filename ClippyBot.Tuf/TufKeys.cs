using System.Security.Cryptography;
using System.Text.Json.Nodes;
using NSec.Cryptography;

namespace ClippyBot.Tuf;

/// <summary>An Ed25519 public key as TUF writes it; its key id is SHA-256 over the canonical form of that object.</summary>
public sealed record TufPublicKey(string PublicHex)
{
    private static readonly SignatureAlgorithm Ed25519 = SignatureAlgorithm.Ed25519;

    public const string KeyType = "ed25519";

    public JsonObject ToJson() => new()
    {
        ["keytype"] = KeyType,
        ["scheme"] = KeyType,
        ["keyval"] = new JsonObject { ["public"] = PublicHex },
    };

    public string KeyId => Convert.ToHexStringLower(SHA256.HashData(CanonicalJson.Serialize(ToJson())));

    public static TufPublicKey FromRaw(ReadOnlySpan<byte> publicKey) =>
        publicKey.Length == 32 ? new(Convert.ToHexStringLower(publicKey)) : throw new ArgumentException("An Ed25519 public key is 32 bytes.", nameof(publicKey));

    /// <summary>Reads a key object; anything but an Ed25519 key of 32 bytes is refused (the platform signs with nothing else).</summary>
    public static TufPublicKey Parse(JsonNode? node)
    {
        if (node is not JsonObject key
            || TufJson.String(key, "keytype") != KeyType || TufJson.String(key, "scheme") != KeyType
            || key["keyval"] is not JsonObject value || TufJson.String(value, "public") is not { Length: 64 } hex
            || !hex.All(char.IsAsciiHexDigitLower))
        {
            throw new TufException(TufFailure.Malformed, "A key is not an Ed25519 key in lower-case hex.");
        }
        return new TufPublicKey(hex);
    }

    public bool Verify(ReadOnlySpan<byte> data, ReadOnlySpan<byte> signature)
    {
        if (signature.Length != Ed25519.SignatureSize
            || !PublicKey.TryImport(Ed25519, Convert.FromHexString(PublicHex), KeyBlobFormat.RawPublicKey, out var key))
        {
            return false;
        }
        return Ed25519.Verify(key!, data, signature);
    }
}

/// <summary>An Ed25519 private key that signs metadata (the registry's online keys, the offline root keys).</summary>
public sealed class TufSigningKey : IDisposable
{
    private static readonly SignatureAlgorithm Ed25519 = SignatureAlgorithm.Ed25519;
    private readonly Key _key;

    private TufSigningKey(Key key)
    {
        _key = key;
        Public = TufPublicKey.FromRaw(key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
    }

    public TufPublicKey Public { get; }

    public string KeyId => Public.KeyId;

    public static TufSigningKey Generate() =>
        new(Key.Create(Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));

    /// <summary>From the 32-byte seed (RFC 8032's private key).</summary>
    public static TufSigningKey FromSeed(ReadOnlySpan<byte> seed) =>
        new(Key.Import(Ed25519, seed, KeyBlobFormat.RawPrivateKey, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport }));

    public byte[] ExportSeed() => _key.Export(KeyBlobFormat.RawPrivateKey);

    public byte[] Sign(ReadOnlySpan<byte> data) => Ed25519.Sign(_key, data);

    public void Dispose() => _key.Dispose();
}
