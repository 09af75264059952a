using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ClippyBot.Plugins.Bundles;

/// <summary>
/// A plugin bundle: one zip file holding <c>manifest.json</c>, <c>plugin.wasm</c> and <c>signatures/*.json</c>
/// (docs/plugins/bundle-format.md). Reading is bounded — entry count, sizes and compression ratio — so a zip bomb is refused
/// before it is inflated.
/// </summary>
public sealed class PluginBundle
{
    public const string ManifestEntry = "manifest.json";
    public const string WasmEntry = "plugin.wasm";
    public const string SignaturePrefix = "signatures/";
    public const long MaxWasmBytes = 32L * 1024 * 1024;
    public const long MaxBundleBytes = 40L * 1024 * 1024;
    private const int MaxEntries = 16;
    private const int MaxCompressionRatio = 100;

    public PluginBundle(byte[] manifestBytes, byte[] wasm, IReadOnlyList<BundleSignature> signatures)
    {
        ManifestBytes = manifestBytes;
        Wasm = wasm;
        Signatures = signatures;
    }

    /// <summary>The manifest exactly as stored: signatures cover these bytes, not a re-serialisation.</summary>
    public byte[] ManifestBytes { get; }

    public byte[] Wasm { get; }

    public IReadOnlyList<BundleSignature> Signatures { get; }

    public string ManifestSha256 => Convert.ToHexStringLower(SHA256.HashData(ManifestBytes));

    public string WasmSha256 => Convert.ToHexStringLower(SHA256.HashData(Wasm));

    public static PluginBundle Read(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        try
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            if (zip.Entries.Count > MaxEntries)
            {
                throw new BundleException(BundleError.Malformed, $"The bundle has {zip.Entries.Count} entries; at most {MaxEntries} are allowed.");
            }
            byte[]? manifest = null;
            byte[]? wasm = null;
            var signatures = new List<BundleSignature>();
            foreach (var entry in zip.Entries)
            {
                if (entry.Length > MaxWasmBytes || (entry.CompressedLength > 0 && entry.Length / entry.CompressedLength > MaxCompressionRatio && entry.Length > 1024 * 1024))
                {
                    throw new BundleException(BundleError.Malformed, $"Entry '{entry.FullName}' is too large or compressed suspiciously well (zip bomb?).");
                }
                switch (entry.FullName)
                {
                    case ManifestEntry when manifest is null:
                        manifest = ReadBounded(entry, ManifestValidator.MaxManifestBytes);
                        break;
                    case WasmEntry when wasm is null:
                        wasm = ReadBounded(entry, MaxWasmBytes);
                        break;
                    case var name when name.StartsWith(SignaturePrefix, StringComparison.Ordinal) && name.EndsWith(".json", StringComparison.Ordinal):
                        signatures.Add(BundleSignature.FromJson(ReadBounded(entry, 16 * 1024)));
                        break;
                    default:
                        throw new BundleException(BundleError.Malformed, $"Unexpected entry '{entry.FullName}' in the bundle.");
                }
            }
            return new PluginBundle(
                manifest ?? throw new BundleException(BundleError.Malformed, "The bundle has no manifest.json."),
                wasm ?? throw new BundleException(BundleError.Malformed, "The bundle has no plugin.wasm."),
                signatures);
        }
        catch (InvalidDataException e)
        {
            throw new BundleException(BundleError.Malformed, "The bundle is not a valid zip file: " + e.Message);
        }
    }

    public void Write(Stream stream)
    {
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        Add(zip, ManifestEntry, ManifestBytes);
        Add(zip, WasmEntry, Wasm);
        foreach (var signature in Signatures)
        {
            Add(zip, $"{SignaturePrefix}{signature.KeyId}.json", signature.ToJson());
        }
    }

    public PluginBundle WithSignature(BundleSignature signature) =>
        new(ManifestBytes, Wasm, [.. Signatures.Where(s => s.KeyId != signature.KeyId), signature]);

    private static void Add(ZipArchive zip, string name, byte[] content)
    {
        // A fixed timestamp: the same inputs make the same bundle bytes.
        var entry = zip.CreateEntry(name, CompressionLevel.Optimal);
        entry.LastWriteTime = new DateTimeOffset(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);
        using var target = entry.Open();
        target.Write(content);
    }

    private static byte[] ReadBounded(ZipArchiveEntry entry, long max)
    {
        using var source = entry.Open();
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int read;
        while ((read = source.Read(chunk)) > 0)
        {
            if (buffer.Length + read > max)
            {
                throw new BundleException(BundleError.Malformed, $"Entry '{entry.FullName}' inflates beyond {max} bytes.");
            }
            buffer.Write(chunk, 0, read);
        }
        return buffer.ToArray();
    }
}

/// <summary>One detached signature: the canonical statement it signs and the Ed25519 signature over its UTF-8 bytes.</summary>
public sealed record BundleSignature(string KeyId, string Statement, string Signature)
{
    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(this, PluginManifest.Json);

    public static BundleSignature FromJson(byte[] json)
    {
        try
        {
            return JsonSerializer.Deserialize<BundleSignature>(json, PluginManifest.Json)
                   ?? throw new BundleException(BundleError.Malformed, "A signature file is empty.");
        }
        catch (JsonException e)
        {
            throw new BundleException(BundleError.Malformed, "A signature file is not valid: " + e.Message);
        }
    }

    public byte[] StatementBytes => Encoding.UTF8.GetBytes(Statement);
}

public enum BundleError
{
    Malformed,
    InvalidManifest,
    NotSigned,
    UnknownKey,
    KeyNotTrustedForPlugin,
    BadSignature,
    Tampered,
    NotNewer,
}

/// <summary>A bundle refused, with the specific reason.</summary>
public sealed class BundleException(BundleError error, string message) : Exception(message)
{
    public BundleError Error { get; } = error;
}
