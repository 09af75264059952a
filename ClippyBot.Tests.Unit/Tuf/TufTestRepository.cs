using System.Text.Json.Nodes;
using ClippyBot.Tuf;
using Microsoft.Extensions.Time.Testing;

namespace ClippyBot.Tests.Tuf;

/// <summary>
/// A TUF repository in memory, signed with real keys (three root keys, threshold two; one key per online role), and the
/// files it serves. Tests play the attacker by serving other bytes under a name.
/// </summary>
internal sealed class TufTestRepository : ITufRemote, IDisposable
{
    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 12, 4, 12, 0, 0, TimeSpan.Zero));
    public List<TufSigningKey> RootKeys { get; } = [TufSigningKey.Generate(), TufSigningKey.Generate(), TufSigningKey.Generate()];
    public TufSigningKey TargetsKey { get; set; } = TufSigningKey.Generate();
    public TufSigningKey SnapshotKey { get; set; } = TufSigningKey.Generate();
    public TufSigningKey TimestampKey { get; set; } = TufSigningKey.Generate();
    public int RootThreshold { get; set; } = 2;
    public Dictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, TargetFileInfo> Targets { get; } = new(StringComparer.Ordinal);
    public List<string> Fetched { get; } = [];

    public RootMetadata Root { get; private set; } = null!;
    public long TargetsVersion { get; private set; }
    public long SnapshotVersion { get; private set; }
    public long TimestampVersion { get; private set; }

    public TufTestRepository()
    {
        PublishRoot(RootKeys.Take(RootThreshold));
        Publish();
    }

    public byte[] PinnedRoot => Files["1.root.json"];

    /// <summary>Root version n+1 with the current keys, signed by <paramref name="signers"/>.</summary>
    public byte[] PublishRoot(IEnumerable<TufSigningKey> signers, TimeSpan? lifetime = null)
    {
        var keys = RootKeys.Concat([TargetsKey, SnapshotKey, TimestampKey]).Select(k => k.Public).DistinctBy(k => k.KeyId).ToDictionary(k => k.KeyId, StringComparer.Ordinal);
        Root = new RootMetadata((Root?.Version ?? 0) + 1, Time.GetUtcNow() + (lifetime ?? TimeSpan.FromDays(365)), keys,
            new Dictionary<string, RoleKeys>(StringComparer.Ordinal)
            {
                [TufRole.Root] = new([.. RootKeys.Select(k => k.KeyId)], RootThreshold),
                [TufRole.Targets] = new([TargetsKey.KeyId], 1),
                [TufRole.Snapshot] = new([SnapshotKey.KeyId], 1),
                [TufRole.Timestamp] = new([TimestampKey.KeyId], 1),
            }, ConsistentSnapshot: true);
        var file = Root.Sign(signers);
        Files[$"{Root.Version}.root.json"] = file;
        return file;
    }

    /// <summary>A new targets, snapshot and timestamp version holding <see cref="Targets"/>.</summary>
    public void Publish(TimeSpan? timestampLifetime = null)
    {
        var targets = new TargetsMetadata(++TargetsVersion, Time.GetUtcNow().AddDays(30), new Dictionary<string, TargetFileInfo>(Targets));
        var targetsFile = targets.Sign([TargetsKey]);
        Files[$"{targets.Version}.targets.json"] = targetsFile;
        var snapshot = new SnapshotMetadata(++SnapshotVersion, Time.GetUtcNow().AddDays(7),
            new Dictionary<string, MetaFileInfo> { [SnapshotMetadata.TargetsFile] = MetaFileInfo.Of(targets.Version, targetsFile) });
        var snapshotFile = snapshot.Sign([SnapshotKey]);
        Files[$"{snapshot.Version}.snapshot.json"] = snapshotFile;
        Files["timestamp.json"] = Timestamp(++TimestampVersion, MetaFileInfo.Of(snapshot.Version, snapshotFile), timestampLifetime);
    }

    public byte[] Timestamp(long version, MetaFileInfo snapshot, TimeSpan? lifetime = null) =>
        new TimestampMetadata(version, Time.GetUtcNow() + (lifetime ?? TimeSpan.FromDays(1)), snapshot).Sign([TimestampKey]);

    public void AddTarget(string name, byte[] content, string plugin, string version) =>
        Targets[name] = new TargetFileInfo(content.LongLength, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(content)),
            new JsonObject { ["plugin"] = plugin, ["version"] = version });

    public TufUpdater Client(InMemoryTrustStore store, TufLimits? limits = null) => new(this, store, PinnedRoot, Time, limits);

    public Task<byte[]?> FetchAsync(string name, long maxLength, CancellationToken ct)
    {
        Fetched.Add(name);
        return Task.FromResult(Files.TryGetValue(name, out var file) ? file : null);
    }

    public void Dispose()
    {
        foreach (var key in RootKeys.Concat([TargetsKey, SnapshotKey, TimestampKey]))
        {
            key.Dispose();
        }
    }
}
