using System.Globalization;
using System.Security.Cryptography;
using NSec.Cryptography;

namespace ClippyBot.Plugins.Bundles;

/// <summary>A bundle that passed verification: its manifest and the trusted key that vouches for it.</summary>
public sealed record VerifiedBundle(PluginManifest Manifest, string SignerKeyId, string WasmSha256);

/// <summary>
/// Ed25519 (NSec) signatures over a canonical statement (docs/plugins/bundle-format.md):
/// <code>
/// clippybot-plugin-signature/v1
/// plugin: ID
/// version: VERSION
/// manifest-sha256: HEX
/// wasm-sha256: HEX
/// signer: KEY ID
/// signed-at: yyyy-MM-ddTHH:mm:ssZ
/// </code>
/// The key id is the first 16 hex digits of SHA-256 of the raw public key. Any number of signatures may sit side by side
/// (a publisher's and a countersignature); one valid signature by a key trusted for the plugin id is enough.
/// </summary>
public static class PluginSigning
{
    private static readonly SignatureAlgorithm Ed25519 = SignatureAlgorithm.Ed25519;
    private const string Header = "clippybot-plugin-signature/v1";

    public static string KeyIdOf(ReadOnlySpan<byte> publicKey) => Convert.ToHexStringLower(SHA256.HashData(publicKey))[..16];

    /// <summary>A new key pair as raw bytes (32-byte seed, 32-byte public key).</summary>
    public static (byte[] PrivateKey, byte[] PublicKey) GenerateKey()
    {
        using var key = Key.Create(Ed25519, new KeyCreationParameters { ExportPolicy = KeyExportPolicies.AllowPlaintextExport });
        return (key.Export(KeyBlobFormat.RawPrivateKey), key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
    }

    public static string Statement(string pluginId, string version, string manifestSha256, string wasmSha256, string keyId, DateTimeOffset signedAt) =>
        string.Create(CultureInfo.InvariantCulture,
            $"{Header}\nplugin: {pluginId}\nversion: {version}\nmanifest-sha256: {manifestSha256}\nwasm-sha256: {wasmSha256}\nsigner: {keyId}\nsigned-at: {signedAt.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}\n");

    /// <summary>
    /// What a publisher signs to prove they hold a key they register with the community registry: binds the key to one
    /// publisher and one server challenge, so a signature cannot be replayed for another publisher or another key.
    /// </summary>
    public static string KeyProofStatement(Guid publisherId, string challenge, string publicKeyBase64) =>
        $"clippybot-registry-key/v1\npublisher: {publisherId}\nchallenge: {challenge}\nkey: {publicKeyBase64}\n";

    /// <summary>Signs a key-proof statement with the key's private half: (public key, signature), both base64.</summary>
    public static (string PublicKey, string Signature) ProveKey(ReadOnlySpan<byte> privateKey, Guid publisherId, string challenge)
    {
        using var key = Key.Import(Ed25519, privateKey, KeyBlobFormat.RawPrivateKey);
        var publicKey = Convert.ToBase64String(key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
        var signature = Ed25519.Sign(key, System.Text.Encoding.UTF8.GetBytes(KeyProofStatement(publisherId, challenge, publicKey)));
        return (publicKey, Convert.ToBase64String(signature));
    }

    /// <summary>Signs the bundle as it is now (manifest must be valid); returns the signature to add.</summary>
    public static BundleSignature Sign(PluginBundle bundle, ReadOnlySpan<byte> privateKey, DateTimeOffset signedAt)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        var manifest = ParseManifest(bundle);
        using var key = Key.Import(Ed25519, privateKey, KeyBlobFormat.RawPrivateKey);
        var keyId = KeyIdOf(key.PublicKey.Export(KeyBlobFormat.RawPublicKey));
        var statement = Statement(manifest.Id, manifest.Version, bundle.ManifestSha256, bundle.WasmSha256, keyId, signedAt);
        var signature = Ed25519.Sign(key, System.Text.Encoding.UTF8.GetBytes(statement));
        return new BundleSignature(keyId, statement, Convert.ToBase64String(signature));
    }

    /// <summary>Verifies the bundle against the trust store; throws <see cref="BundleException"/> naming the specific failure.</summary>
    public static VerifiedBundle Verify(PluginBundle bundle, PluginTrustStore trust)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(trust);
        var manifest = ParseManifest(bundle);
        if (bundle.Signatures.Count == 0)
        {
            throw new BundleException(BundleError.NotSigned, $"Plugin {manifest.Id} {manifest.Version} is not signed.");
        }
        BundleException? failure = null;
        foreach (var signature in bundle.Signatures)
        {
            var problem = Check(signature, bundle, manifest, trust);
            if (problem is null)
            {
                return new VerifiedBundle(manifest, signature.KeyId, bundle.WasmSha256);
            }
            // Report the most telling problem: tampering over an untrusted key over an unknown one.
            if (failure is null || Rank(problem.Error) > Rank(failure.Error))
            {
                failure = problem;
            }
        }
        throw failure!;
    }

    private static BundleException? Check(BundleSignature signature, PluginBundle bundle, PluginManifest manifest, PluginTrustStore trust)
    {
        if (trust.Find(signature.KeyId) is not { } key)
        {
            return new BundleException(BundleError.UnknownKey, $"Signed by key {signature.KeyId}, which is not in the trust store.");
        }
        if (!key.MayVouchFor(manifest.Id))
        {
            return new BundleException(BundleError.KeyNotTrustedForPlugin, $"Key {signature.KeyId} ({key.Name}) is not trusted for plugin {manifest.Id}.");
        }
        byte[] raw;
        try
        {
            raw = Convert.FromBase64String(signature.Signature);
        }
        catch (FormatException)
        {
            return new BundleException(BundleError.BadSignature, $"The signature by key {signature.KeyId} is not base64.");
        }
        var publicKey = PublicKey.Import(Ed25519, key.PublicKey, KeyBlobFormat.RawPublicKey);
        if (!Ed25519.Verify(publicKey, signature.StatementBytes, raw))
        {
            return new BundleException(BundleError.BadSignature, $"The signature by key {signature.KeyId} does not verify: the signed statement was altered or signed by another key.");
        }
        var signedAt = signature.Statement.Split('\n').FirstOrDefault(l => l.StartsWith("signed-at: ", StringComparison.Ordinal))?["signed-at: ".Length..];
        if (!DateTimeOffset.TryParseExact(signedAt, "yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at)
            || signature.Statement != Statement(manifest.Id, manifest.Version, bundle.ManifestSha256, bundle.WasmSha256, signature.KeyId, at))
        {
            return new BundleException(BundleError.Tampered,
                $"The bundle does not match what key {signature.KeyId} signed: manifest or wasm bytes (or id/version) changed after signing.");
        }
        return null;
    }

    private static int Rank(BundleError error) => error switch
    {
        BundleError.Tampered => 4,
        BundleError.BadSignature => 3,
        BundleError.KeyNotTrustedForPlugin => 2,
        _ => 1,
    };

    private static PluginManifest ParseManifest(PluginBundle bundle)
    {
        var (manifest, errors) = ManifestValidator.Parse(bundle.ManifestBytes);
        return manifest ?? throw new BundleException(BundleError.InvalidManifest, "The manifest is not valid: " + string.Join("; ", errors));
    }
}
