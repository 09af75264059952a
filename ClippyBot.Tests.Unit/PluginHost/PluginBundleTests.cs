using System.IO.Compression;
using System.Text;
using System.Text.Json;
using ClippyBot.Plugins.Bundles;
using ClippyBot.PluginTool;

namespace ClippyBot.Tests.PluginHost;

/// <summary>Plugin bundles: manifest schema, Ed25519 signatures over a canonical statement, specific refusals, bounded reading.</summary>
[TestClass]
public sealed class PluginBundleTests
{
    private static readonly byte[] Wasm = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

    public TestContext TestContext { get; set; } = null!;

    private static string ManifestJson(string id = "dev.clippybot.echo", string version = "1.0.0", string permissions = """[{ "name": "storage:kv", "parameters": { "quotaBytes": 65536 } }]""") => $$"""
        {
          "id": "{{id}}",
          "name": "Echo",
          "version": "{{version}}",
          "publisher": "ClippyBot",
          "description": "Answers what it is told.",
          "entryPoints": [{ "event": "on_message", "export": "on_message" }],
          "permissions": {{permissions}},
          "resources": { "memoryMiB": 16, "fuel": 1000000, "timeoutMs": 500 }
        }
        """;

    [TestMethod]
    public void A_valid_manifest_parses_and_every_problem_names_its_field()
    {
        var (manifest, errors) = ManifestValidator.Parse(Encoding.UTF8.GetBytes(ManifestJson()));
        Assert.IsEmpty(errors);
        Assert.AreEqual("dev.clippybot.echo", manifest!.Id);

        (_, errors) = ManifestValidator.Parse(Encoding.UTF8.GetBytes(ManifestJson(id: "Bad Id", version: "1.0", permissions: """[{ "name": "fs:write" }, { "name": "http:fetch" }]""")));
        CollectionAssert.IsSubsetOf(new[] { "$.id", "$.version", "$.permissions[0].name", "$.permissions[1].parameters.hosts" }, errors.Select(e => e.Field).ToList(), string.Join("\n", errors));

        // secrets:read names the secrets it reads, each a valid secret name.
        (_, errors) = ManifestValidator.Parse(Encoding.UTF8.GetBytes(ManifestJson(permissions: """[{ "name": "secrets:read" }, { "name": "secrets:read", "parameters": { "names": ["ok", "not ok"] } }]""")));
        CollectionAssert.AreEqual(new[] { "$.permissions[0].parameters.names", "$.permissions[1].parameters.names" }, errors.Select(e => e.Field).ToList(), string.Join("\n", errors));
        (var withSecrets, errors) = ManifestValidator.Parse(Encoding.UTF8.GetBytes(ManifestJson(permissions: """[{ "name": "secrets:read", "parameters": { "names": ["WEBHOOK_KEY", "api.token"] } }]""")));
        Assert.IsEmpty(errors);
        CollectionAssert.AreEqual(new[] { "WEBHOOK_KEY", "api.token" }, withSecrets!.SecretNames.ToList());

        // storage:kv's quota has one meaning: a whole number of bytes in range (never a value the host would read as "default").
        foreach (var quota in new[] { "0", "-1", "0.5", "1e30", "\"1024\"", "16777217" })
        {
            (_, errors) = ManifestValidator.Parse(Encoding.UTF8.GetBytes(ManifestJson(permissions: $$"""[{ "name": "storage:kv", "parameters": { "quotaBytes": {{quota}} } }]""")));
            CollectionAssert.AreEqual(new[] { "$.permissions[0].parameters.quotaBytes" }, errors.Select(e => e.Field).ToList(), quota);
        }

        (_, errors) = ManifestValidator.Parse("""{ "id": "dev.x.y", "surprise": true }"""u8);
        Assert.AreEqual("$", errors.Single().Field[..1]);
        StringAssert.Contains(errors.Single().ToString(), "surprise");
    }

    [TestMethod]
    public void A_signed_bundle_verifies_and_round_trips_through_its_file_format()
    {
        var (privateKey, publicKey) = PluginSigning.GenerateKey();
        var bundle = Signed(ManifestJson(), privateKey);
        var reread = Reread(bundle);

        var verified = PluginSigning.Verify(reread, Trust(publicKey));
        Assert.AreEqual("dev.clippybot.echo", verified.Manifest.Id);
        Assert.AreEqual(PluginSigning.KeyIdOf(publicKey), verified.SignerKeyId);
        StringAssert.StartsWith(reread.Signatures.Single().Statement, "clippybot-plugin-signature/v1\nplugin: dev.clippybot.echo\nversion: 1.0.0\n");
    }

    [TestMethod]
    public void Changing_any_byte_of_manifest_or_wasm_after_signing_is_refused_as_tampered()
    {
        var (privateKey, publicKey) = PluginSigning.GenerateKey();
        var bundle = Signed(ManifestJson(), privateKey);
        // Still a valid manifest, one letter different from what was signed.
        var manifest = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(bundle.ManifestBytes).Replace("it is told", "it is sold", StringComparison.Ordinal));
        Assert.IsNotNull(ManifestValidator.Parse(manifest).Manifest);
        AssertRefused(new PluginBundle(manifest, bundle.Wasm, bundle.Signatures), Trust(publicKey), BundleError.Tampered);
        for (var i = 0; i < Wasm.Length; i++)
        {
            var wasm = (byte[])bundle.Wasm.Clone();
            wasm[i] ^= 1;
            AssertRefused(new PluginBundle(bundle.ManifestBytes, wasm, bundle.Signatures), Trust(publicKey), BundleError.Tampered);
        }
        var signature = bundle.Signatures.Single();
        var forged = signature with { Statement = signature.Statement.Replace("version: 1.0.0", "version: 9.9.9", StringComparison.Ordinal) };
        AssertRefused(new PluginBundle(bundle.ManifestBytes, bundle.Wasm, [forged]), Trust(publicKey), BundleError.BadSignature);
    }

    [TestMethod]
    public void Unsigned_unknown_key_and_key_not_trusted_for_the_plugin_are_refused_specifically()
    {
        var (privateKey, publicKey) = PluginSigning.GenerateKey();
        var (_, stranger) = PluginSigning.GenerateKey();
        var unsigned = new PluginBundle(Encoding.UTF8.GetBytes(ManifestJson()), Wasm, []);
        AssertRefused(unsigned, Trust(publicKey), BundleError.NotSigned);
        AssertRefused(Signed(ManifestJson(), privateKey), Trust(stranger), BundleError.UnknownKey);
        var scoped = new PluginTrustStore([new TrustedKey("acme", publicKey, ["com.acme.only"])]);
        AssertRefused(Signed(ManifestJson(), privateKey), scoped, BundleError.KeyNotTrustedForPlugin);
        AssertRefused(new PluginBundle("{}"u8.ToArray(), Wasm, []), Trust(publicKey), BundleError.InvalidManifest);
    }

    [TestMethod]
    public void A_countersignature_by_an_unknown_key_does_not_hurt_a_trusted_one()
    {
        var (publisher, publisherPublic) = PluginSigning.GenerateKey();
        var (counter, _) = PluginSigning.GenerateKey();
        var bundle = Signed(ManifestJson(), counter);
        bundle = bundle.WithSignature(PluginSigning.Sign(bundle, publisher, DateTimeOffset.UtcNow));
        Assert.HasCount(2, Reread(bundle).Signatures);
        Assert.AreEqual(PluginSigning.KeyIdOf(publisherPublic), PluginSigning.Verify(Reread(bundle), Trust(publisherPublic)).SignerKeyId);
    }

    [TestMethod]
    public void A_zip_bomb_unexpected_entries_and_non_zips_are_refused_before_inflating()
    {
        using var bomb = new MemoryStream();
        using (var zip = new ZipArchive(bomb, ZipArchiveMode.Create, leaveOpen: true))
        {
            zip.CreateEntry("manifest.json").Open().Dispose();
            using var wasm = zip.CreateEntry("plugin.wasm", CompressionLevel.SmallestSize).Open();
            var zeros = new byte[1024 * 1024];
            for (var i = 0; i < 64; i++)
            {
                wasm.Write(zeros);
            }
        }
        Assert.IsLessThan(200_000L, bomb.Length, "64 MiB of zeros compress to almost nothing");
        bomb.Position = 0;
        Assert.AreEqual(BundleError.Malformed, Assert.Throws<BundleException>(() => PluginBundle.Read(bomb)).Error);

        using var extra = new MemoryStream();
        using (var zip = new ZipArchive(extra, ZipArchiveMode.Create, leaveOpen: true))
        {
            zip.CreateEntry("../evil.sh").Open().Dispose();
        }
        extra.Position = 0;
        StringAssert.Contains(Assert.Throws<BundleException>(() => PluginBundle.Read(extra)).Message, "Unexpected entry");
        Assert.AreEqual(BundleError.Malformed, Assert.Throws<BundleException>(() => PluginBundle.Read(new MemoryStream("not a zip"u8.ToArray()))).Error);
    }

    [TestMethod]
    public void Versions_follow_SemVer_precedence()
    {
        string[] ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"];
        for (var i = 1; i < ordered.Length; i++)
        {
            Assert.IsTrue(SemVersion.Parse(ordered[i]) > SemVersion.Parse(ordered[i - 1]), $"{ordered[i]} > {ordered[i - 1]}");
        }
        Assert.AreEqual(0, SemVersion.Parse("1.0.0+build.5").CompareTo(SemVersion.Parse("1.0.0")), "build metadata does not count");
        Assert.IsFalse(SemVersion.TryParse("01.0.0", out _));
    }

    [TestMethod]
    public void The_CLI_makes_keys_packs_signs_verifies_and_inspects()
    {
        var dir = Directory.CreateTempSubdirectory("clippybot-plugin-cli-").FullName;
        try
        {
            var manifest = Path.Combine(dir, "manifest.json");
            var wasm = Path.Combine(dir, "plugin.wasm");
            var bundle = Path.Combine(dir, "echo.cbp");
            File.WriteAllText(manifest, ManifestJson());
            File.WriteAllBytes(wasm, Wasm);

            Assert.AreEqual(0, Cli("keygen", "--out", Path.Combine(dir, "publisher")).Code);
            Assert.AreEqual(0, Cli("keygen", "--out", Path.Combine(dir, "other")).Code);
            if (!OperatingSystem.IsWindows())
            {
                Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(dir, "publisher.key")));
            }
            Assert.AreEqual(0, Cli("pack", "--manifest", manifest, "--wasm", wasm, "--out", bundle).Code);
            var (code, _, error) = Cli("verify", "--bundle", bundle, "--trust", Path.Combine(dir, "publisher.pub"));
            Assert.AreEqual(1, code);
            StringAssert.Contains(error, "NotSigned");

            Assert.AreEqual(0, Cli("sign", "--bundle", bundle, "--key", Path.Combine(dir, "publisher.key")).Code);
            (code, var output, error) = Cli("verify", "--bundle", bundle, "--trust", Path.Combine(dir, "publisher.pub"));
            Assert.AreEqual(0, code, error);
            StringAssert.StartsWith(output, "OK: dev.clippybot.echo 1.0.0");
            (code, _, error) = Cli("verify", "--bundle", bundle, "--trust", Path.Combine(dir, "other.pub"));
            Assert.AreEqual(1, code);
            StringAssert.Contains(error, "UnknownKey");
            (code, output, _) = Cli("inspect", "--bundle", bundle);
            Assert.AreEqual(0, code);
            StringAssert.Contains(output, "permission: storage:kv");

            File.WriteAllText(manifest, ManifestJson(version: "one"));
            (code, _, error) = Cli("pack", "--manifest", manifest, "--wasm", wasm, "--out", Path.Combine(dir, "bad.cbp"));
            Assert.AreEqual(1, code);
            StringAssert.Contains(error, "$.version");
            Assert.AreEqual(2, Cli("sign").Code);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static PluginBundle Signed(string manifest, byte[] privateKey)
    {
        var bundle = new PluginBundle(Encoding.UTF8.GetBytes(manifest), Wasm, []);
        return bundle.WithSignature(PluginSigning.Sign(bundle, privateKey, DateTimeOffset.UtcNow));
    }

    private static PluginBundle Reread(PluginBundle bundle)
    {
        using var stream = new MemoryStream();
        bundle.Write(stream);
        stream.Position = 0;
        return PluginBundle.Read(stream);
    }

    private static PluginTrustStore Trust(byte[] publicKey) => new([new TrustedKey("first-party", publicKey, ["*"])]);

    private static void AssertRefused(PluginBundle bundle, PluginTrustStore trust, BundleError expected) =>
        Assert.AreEqual(expected, Assert.Throws<BundleException>(() => PluginSigning.Verify(Reread(bundle), trust)).Error);

    private static (int Code, string Output, string Error) Cli(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = PluginCli.Run(args, output, error, TimeProvider.System);
        return (code, output.ToString(), error.ToString());
    }
}
