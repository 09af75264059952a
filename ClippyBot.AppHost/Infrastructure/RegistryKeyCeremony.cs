using ClippyBot.Plugins.Bundles;
using ClippyBot.Security;
using ClippyBot.Tuf;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>The registry's development keys: the root files (base64, version 1 first), the online roles' seeds, the first-party publisher's key pair.</summary>
public sealed record RegistryKeys(IReadOnlyList<string> Roots, string TargetsSeed, string SnapshotSeed, string TimestampSeed,
    string FirstPartyPrivateKey, string FirstPartyPublicKey)
{
    /// <summary>The root a PluginHost pins: version 1 (it walks to the newest itself).</summary>
    public string PinnedRoot => Roots[0];
}

/// <summary>
/// The development stand-in for an offline key ceremony: three root keys (threshold two), one key per online role, and
/// the first-party publisher's signing key, made once under <c>.clippybot/registry/</c> (owner-only files) and read back
/// after. The root is signed here, never by the registry (which holds only the online keys); when the newest root has
/// less than 30 days left, the next version is signed with the same keys, and clients walk to it.
/// A deployment keeps its root keys offline and passes its root files and online keys as parameters instead.
/// </summary>
public static class RegistryKeyCeremony
{
    public const int RootThreshold = 2;
    private static readonly TimeSpan RootLifetime = TimeSpan.FromDays(365);

    public static RegistryKeys EnsureDevelopmentKeys(string folder, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        Directory.CreateDirectory(folder);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var rootKeys = Enumerable.Range(1, 3).Select(i => Key(folder, $"root-{i}")).ToList();
        var targets = Key(folder, "targets");
        var snapshot = Key(folder, "snapshot");
        var timestamp = Key(folder, "timestamp");
        var firstParty = Seed(folder, "first-party");
        try
        {
            var roots = Directory.Exists(Path.Combine(folder, "roots"))
                ? Directory.GetFiles(Path.Combine(folder, "roots"), "*.root.json").OrderBy(f => long.Parse(Path.GetFileName(f).Split('.')[0], System.Globalization.CultureInfo.InvariantCulture))
                    .Select(File.ReadAllBytes).ToList()
                : [];
            var newest = roots.Count == 0 ? null : RootMetadata.Parse(TufEnvelope.Parse(roots[^1], "the newest root").Body);
            if (newest is null || newest.Expires - time.GetUtcNow() < TimeSpan.FromDays(30))
            {
                var root = TufRoots.Create((newest?.Version ?? 0) + 1, time.GetUtcNow() + RootLifetime, [.. rootKeys.Select(k => k.Public)], RootThreshold,
                    targets.Public, snapshot.Public, timestamp.Public);
                var file = root.Sign(rootKeys.Take(RootThreshold));
                Directory.CreateDirectory(Path.Combine(folder, "roots"));
                File.WriteAllBytes(Path.Combine(folder, "roots", $"{root.Version}.root.json"), file);
                roots.Add(file);
            }
            using var firstPartyKey = TufSigningKey.FromSeed(firstParty);
            return new RegistryKeys([.. roots.Select(Convert.ToBase64String)], Convert.ToBase64String(targets.ExportSeed()),
                Convert.ToBase64String(snapshot.ExportSeed()), Convert.ToBase64String(timestamp.ExportSeed()),
                Convert.ToBase64String(firstParty), Convert.ToBase64String(Convert.FromHexString(firstPartyKey.Public.PublicHex)));
        }
        finally
        {
            foreach (var key in rootKeys.Concat([targets, snapshot, timestamp]))
            {
                key.Dispose();
            }
        }
    }

    private static TufSigningKey Key(string folder, string name) => TufSigningKey.FromSeed(Seed(folder, name));

    private static byte[] Seed(string folder, string name)
    {
        var path = Path.Combine(folder, name + ".key");
        if (File.Exists(path))
        {
            return Convert.FromBase64String(OwnerOnlyFile.ReadAllLines(path)[0]);
        }
        var (seed, _) = PluginSigning.GenerateKey();
        OwnerOnlyFile.Write(path, Convert.ToBase64String(seed) + "\n");
        return seed;
    }
}
