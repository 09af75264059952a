using ClippyBot.Plugins.Bundles;

namespace ClippyBot.PluginTool;

/// <summary>
/// <c>clippybot-plugin</c>, the plugin author's tool (docs/plugins/authoring.md):
/// <code>
/// keygen  --out NAME                         NAME.key (private, 0600) and NAME.pub
/// pack    --manifest FILE --wasm FILE --out BUNDLE
/// sign    --bundle BUNDLE --key NAME.key     adds (or replaces) this key's signature
/// prove   --key NAME.key --publisher ID --challenge C   the registry's proof of possession (public key, signature)
/// verify  --bundle BUNDLE --trust NAME.pub [--trust …]
/// inspect --bundle BUNDLE
/// </code>
/// Exit codes: 0 done, 1 refused (the reason on stderr), 2 usage.
/// </summary>
public static class PluginCli
{
    public static int Run(string[] args, TextWriter output, TextWriter error, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(time);
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            error.WriteLine(Usage);
            return 2;
        }
        try
        {
            var options = Parse(args[1..]);
            switch (args[0])
            {
                case "keygen":
                {
                    var name = One(options, "out");
                    var (privateKey, publicKey) = PluginSigning.GenerateKey();
                    WriteNew(name + ".key", Convert.ToBase64String(privateKey) + "\n", secret: true);
                    WriteNew(name + ".pub", Convert.ToBase64String(publicKey) + "\n", secret: false);
                    output.WriteLine($"Key {PluginSigning.KeyIdOf(publicKey)}: private {name}.key (keep it secret), public {name}.pub");
                    return 0;
                }
                case "pack":
                {
                    var manifestBytes = ReadFile(One(options, "manifest"));
                    var (manifest, problems) = ManifestValidator.Parse(manifestBytes);
                    if (manifest is null)
                    {
                        foreach (var problem in problems)
                        {
                            error.WriteLine($"manifest.json {problem}");
                        }
                        return 1;
                    }
                    var wasm = ReadFile(One(options, "wasm"));
                    if (wasm.Length < 8 || !wasm.AsSpan(0, 4).SequenceEqual("\0asm"u8))
                    {
                        error.WriteLine("plugin.wasm is not a WebAssembly module (no \\0asm header).");
                        return 1;
                    }
                    Save(new PluginBundle(manifestBytes, wasm, []), One(options, "out"));
                    output.WriteLine($"Packed {manifest.Id} {manifest.Version} (unsigned) into {One(options, "out")}.");
                    return 0;
                }
                case "sign":
                {
                    var path = One(options, "bundle");
                    var bundle = Load(path);
                    var key = Convert.FromBase64String(File.ReadAllText(One(options, "key")).Trim());
                    var signature = PluginSigning.Sign(bundle, key, time.GetUtcNow());
                    Save(bundle.WithSignature(signature), path, replace: true);
                    output.WriteLine($"Signed {path} with key {signature.KeyId}.");
                    return 0;
                }
                case "prove":
                {
                    // The community registry's proof of possession: paste both lines into the publisher page (or POST /me/keys).
                    var key = Convert.FromBase64String(File.ReadAllText(One(options, "key")).Trim());
                    if (!Guid.TryParse(One(options, "publisher"), out var publisher))
                    {
                        throw new UsageException("--publisher is the publisher id the registry shows (a GUID).");
                    }
                    var (publicKey, signature) = PluginSigning.ProveKey(key, publisher, One(options, "challenge"));
                    output.WriteLine("public key: " + publicKey);
                    output.WriteLine("signature: " + signature);
                    return 0;
                }
                case "verify":
                {
                    var bundle = Load(One(options, "bundle"));
                    var trusted = (options.GetValueOrDefault("trust") ?? throw new UsageException("Give at least one --trust KEY.pub."))
                        .Select(p => new TrustedKey(Path.GetFileName(p), Convert.FromBase64String(File.ReadAllText(p).Trim()), ["*"]));
                    var verified = PluginSigning.Verify(bundle, new PluginTrustStore(trusted));
                    output.WriteLine($"OK: {verified.Manifest.Id} {verified.Manifest.Version}, signed by {verified.SignerKeyId}, wasm sha256 {verified.WasmSha256}.");
                    return 0;
                }
                case "inspect":
                {
                    var bundle = Load(One(options, "bundle"));
                    var (manifest, problems) = ManifestValidator.Parse(bundle.ManifestBytes);
                    output.WriteLine(manifest is null ? "manifest: INVALID — " + string.Join("; ", problems) : $"plugin: {manifest.Id} {manifest.Version} by {manifest.Publisher}");
                    output.WriteLine($"manifest sha256: {bundle.ManifestSha256}");
                    output.WriteLine($"wasm sha256: {bundle.WasmSha256} ({bundle.Wasm.Length} bytes)");
                    foreach (var permission in manifest?.Permissions ?? [])
                    {
                        output.WriteLine($"permission: {permission.Name}");
                    }
                    foreach (var signature in bundle.Signatures)
                    {
                        output.WriteLine($"signature: key {signature.KeyId}, {signature.Statement.Split('\n').FirstOrDefault(l => l.StartsWith("signed-at", StringComparison.Ordinal))} (not verified; use verify)");
                    }
                    return 0;
                }
                default:
                    throw new UsageException($"Unknown command '{args[0]}'.");
            }
        }
        catch (UsageException e)
        {
            error.WriteLine(e.Message + "\n\n" + Usage);
            return 2;
        }
        catch (BundleException e)
        {
            error.WriteLine($"refused ({e.Error}): {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException or FormatException)
        {
            error.WriteLine("clippybot-plugin: " + e.Message);
            return 1;
        }
    }

    private const string Usage = """
        usage: clippybot-plugin keygen  --out NAME
               clippybot-plugin pack    --manifest manifest.json --wasm plugin.wasm --out BUNDLE
               clippybot-plugin sign    --bundle BUNDLE --key NAME.key
               clippybot-plugin prove   --key NAME.key --publisher ID --challenge CHALLENGE
               clippybot-plugin verify  --bundle BUNDLE --trust NAME.pub [--trust OTHER.pub]
               clippybot-plugin inspect --bundle BUNDLE
        """;

    private static Dictionary<string, List<string>> Parse(string[] args)
    {
        var options = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i += 2)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new UsageException($"Expected --option VALUE at '{args[i]}'.");
            }
            if (!options.TryGetValue(args[i][2..], out var values))
            {
                options[args[i][2..]] = values = [];
            }
            values.Add(args[i + 1]);
        }
        return options;
    }

    private static string One(Dictionary<string, List<string>> options, string name) =>
        options.TryGetValue(name, out var values) && values.Count == 1 ? values[0] : throw new UsageException($"--{name} is required (once).");

    private static byte[] ReadFile(string path) => File.Exists(path) ? File.ReadAllBytes(path) : throw new IOException($"{path} does not exist.");

    private static PluginBundle Load(string path)
    {
        using var stream = File.Exists(path) ? File.OpenRead(path) : throw new IOException($"{path} does not exist.");
        return PluginBundle.Read(stream);
    }

    /// <summary>Written beside the target and renamed: a failed write never leaves half a bundle.</summary>
    private static void Save(PluginBundle bundle, string path, bool replace = false)
    {
        if (!replace && File.Exists(path))
        {
            throw new IOException($"{path} already exists.");
        }
        var temporary = path + ".partial";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            bundle.Write(stream);
        }
        File.Move(temporary, path, overwrite: replace);
    }

    private static void WriteNew(string path, string content, bool secret)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (secret && !OperatingSystem.IsWindows())
        {
            // Created owner-only (open(2) with mode 0600): never, not even empty for a moment, readable by anyone else —
            // a reader that opened it in between could read the key once written.
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using var stream = new FileStream(path, options);
        using var writer = new StreamWriter(stream);
        writer.Write(content);
    }
}

public sealed class UsageException(string message) : Exception(message);
