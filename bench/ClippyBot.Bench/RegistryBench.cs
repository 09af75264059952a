using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ClippyBot.Tuf;

namespace ClippyBot.Bench;

/// <summary>
/// ClippyBot.Bench registry-refresh [versions]: what a PluginHost's TUF refresh costs against a registry listing that many
/// approved versions (targets as the registry writes them: length, SHA-256, publisher key, permissions) — the first
/// refresh, one with a new approval, one with nothing new: milliseconds to verify and bytes fetched, median of 20.
/// </summary>
public static class RegistryBench
{
    public static async Task<int> RefreshAsync(int versions)
    {
        var now = DateTimeOffset.UtcNow;
        using var root1 = TufSigningKey.Generate();
        using var root2 = TufSigningKey.Generate();
        using var root3 = TufSigningKey.Generate();
        using var targetsKey = TufSigningKey.Generate();
        using var snapshotKey = TufSigningKey.Generate();
        using var timestampKey = TufSigningKey.Generate();
        var publisher = Convert.ToBase64String(new byte[32]);
        var root = TufRoots.Create(1, now.AddDays(365), [root1.Public, root2.Public, root3.Public], 2, targetsKey.Public, snapshotKey.Public, timestampKey.Public);
        var remote = new CountingRemote();
        remote.Files["1.root.json"] = root.Sign([root1, root2]);
        long version = 0;
        void Publish(int count)
        {
            version++;
            var targets = new TargetsMetadata(version, now.AddDays(30), Enumerable.Range(0, count).ToDictionary(
                i => $"com.example.p{i / 3}/1.{i % 3}.0.bundle",
                i => new TargetFileInfo(40_000 + i, Convert.ToHexStringLower(BitConverter.GetBytes(i).Concat(new byte[28]).ToArray()), new JsonObject
                {
                    ["plugin"] = $"com.example.p{i / 3}", ["version"] = $"1.{i % 3}.0", ["publisher"] = "Example", ["publisher_key_id"] = "0123456789abcdef",
                    ["publisher_key"] = publisher, ["permissions"] = JsonNode.Parse("""[{"name":"http:fetch","parameters":{"hosts":["api.example.com"]}}]"""),
                    ["approved_at"] = "2026-12-04T07:00:00Z",
                }), StringComparer.Ordinal));
            var targetsFile = targets.Sign([targetsKey]);
            remote.Files[$"{version}.targets.json"] = targetsFile;
            var snapshot = new SnapshotMetadata(version, now.AddDays(7), new Dictionary<string, MetaFileInfo> { [SnapshotMetadata.TargetsFile] = MetaFileInfo.Of(version, targetsFile) });
            var snapshotFile = snapshot.Sign([snapshotKey]);
            remote.Files[$"{version}.snapshot.json"] = snapshotFile;
            remote.Files["timestamp.json"] = new TimestampMetadata(version, now.AddDays(1), MetaFileInfo.Of(version, snapshotFile)).Sign([timestampKey]);
        }

        var first = new List<(double Ms, long Bytes)>();
        var approval = new List<(double Ms, long Bytes)>();
        var idle = new List<(double Ms, long Bytes)>();
        for (var round = 0; round < 20; round++)
        {
            Publish(versions);
            var store = new InMemoryTrustStore();
            var updater = new TufUpdater(remote, store, remote.Files["1.root.json"], TimeProvider.System);
            first.Add(await MeasureAsync(remote, () => updater.RefreshAsync(CancellationToken.None)));
            Publish(versions + 1);
            TufTrustedSet last = null!;
            approval.Add(await MeasureAsync(remote, async () => last = await updater.RefreshAsync(CancellationToken.None)));
            // As the PluginHost does: the set verified last is handed to the next refresh.
            var next = new TufUpdater(remote, store, remote.Files["1.root.json"], TimeProvider.System, previous: last);
            idle.Add(await MeasureAsync(remote, () => next.RefreshAsync(CancellationToken.None)));
        }
        static string Median(List<(double Ms, long Bytes)> runs) =>
            string.Create(CultureInfo.InvariantCulture, $"{runs.Select(r => r.Ms).Order().ElementAt(runs.Count / 2):0.0} ms, {runs.Select(r => r.Bytes).Order().ElementAt(runs.Count / 2):N0} bytes");
        Console.WriteLine($"TUF refresh with {versions:N0} approved versions (median of 20, one core):");
        Console.WriteLine($"  first refresh (root, timestamp, snapshot, targets): {Median(first)}");
        Console.WriteLine($"  after one new approval (new timestamp, snapshot, targets): {Median(approval)}");
        Console.WriteLine($"  nothing new (next root 404, timestamp): {Median(idle)}");
        return 0;
    }

    private static async Task<(double Ms, long Bytes)> MeasureAsync(CountingRemote remote, Func<Task<TufTrustedSet>> refresh)
    {
        remote.Bytes = 0;
        var clock = Stopwatch.StartNew();
        await refresh();
        return (clock.Elapsed.TotalMilliseconds, remote.Bytes);
    }

    private sealed class CountingRemote : ITufRemote
    {
        public Dictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);
        public long Bytes { get; set; }

        public Task<byte[]?> FetchAsync(string name, long maxLength, CancellationToken ct)
        {
            var file = Files.GetValueOrDefault(name);
            Bytes += file?.LongLength ?? 0;
            return Task.FromResult(file);
        }
    }
}
