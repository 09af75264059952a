using System.Text;
using System.Text.Json.Nodes;
using ClippyBot.Tuf;

namespace ClippyBot.Tests.Tuf;

/// <summary>
/// The client workflow against each attack the TUF specification lists, played by a repository that serves what an
/// attacker (a mirror, someone in the way, or the holder of a stolen online key) would.
/// </summary>
[TestClass]
public sealed class TufUpdaterAttackTests
{
    private static readonly byte[] Counter = Encoding.UTF8.GetBytes("counter 1.0.0 bundle bytes");

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [TestMethod]
    public async Task A_client_learns_the_approved_targets_and_accepts_exactly_their_bytes()
    {
        using var repository = new TufTestRepository();
        repository.AddTarget("dev.clippybot.counter/1.0.0.bundle", Counter, "dev.clippybot.counter", "1.0.0");
        repository.Publish();
        var store = new InMemoryTrustStore();

        var trusted = await repository.Client(store).RefreshAsync(Ct);

        Assert.AreEqual(2, trusted.Targets.Version);
        Assert.AreEqual("dev.clippybot.counter", trusted.VerifyTarget("dev.clippybot.counter/1.0.0.bundle", Counter).Custom["plugin"]!.GetValue<string>());
        CollectionAssert.AreEquivalent(new[] { TufRole.Root, TufRole.Timestamp, TufRole.Snapshot, TufRole.Targets }, store.Roles.Keys.ToArray());
        Assert.AreEqual("dev.clippybot.counter/" + trusted.Targets.Targets.Values.Single().Sha256 + ".1.0.0.bundle",
            TufTrustedSet.TargetFileName("dev.clippybot.counter/1.0.0.bundle", trusted.Targets.Targets.Values.Single().Sha256));
        // Nothing changed: the next refresh fetches only root's next version and timestamp.
        repository.Fetched.Clear();
        await repository.Client(store).RefreshAsync(Ct);
        CollectionAssert.AreEqual(new[] { "2.root.json", "timestamp.json" }, repository.Fetched);
    }

    [TestMethod]
    public async Task Arbitrary_package_a_bundle_whose_bytes_or_length_differ_from_the_listing_or_that_is_not_listed_is_refused()
    {
        using var repository = new TufTestRepository();
        repository.AddTarget("dev.clippybot.counter/1.0.0.bundle", Counter, "dev.clippybot.counter", "1.0.0");
        repository.Publish();
        var trusted = await repository.Client(new InMemoryTrustStore()).RefreshAsync(Ct);

        var tampered = (byte[])Counter.Clone();
        tampered[0] ^= 1;
        Assert.AreEqual(TufFailure.Target, Assert.ThrowsExactly<TufException>(() => trusted.VerifyTarget("dev.clippybot.counter/1.0.0.bundle", tampered)).Failure);
        Assert.AreEqual(TufFailure.Target, Assert.ThrowsExactly<TufException>(() => trusted.VerifyTarget("dev.clippybot.counter/1.0.0.bundle", [.. Counter, 0])).Failure);
        Assert.AreEqual(TufFailure.Target, Assert.ThrowsExactly<TufException>(() => trusted.VerifyTarget("dev.clippybot.counter/9.9.9.bundle", Counter)).Failure);
    }

    [TestMethod]
    public async Task Rollback_an_older_timestamp_is_refused_and_the_newer_one_stays_trusted()
    {
        using var repository = new TufTestRepository();
        var oldTimestamp = repository.Files["timestamp.json"];
        repository.Publish();
        var store = new InMemoryTrustStore();
        await repository.Client(store).RefreshAsync(Ct);
        var trustedTimestamp = store.Roles[TufRole.Timestamp];

        repository.Files["timestamp.json"] = oldTimestamp;

        var failure = await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct));
        Assert.AreEqual(TufFailure.Rollback, failure.Failure);
        StringAssert.Contains(failure.Message, "timestamp.json version 1 is older than the trusted 2");
        CollectionAssert.AreEqual(trustedTimestamp, store.Roles[TufRole.Timestamp]);
    }

    [TestMethod]
    public async Task Rollback_a_new_timestamp_naming_an_older_snapshot_or_a_snapshot_naming_older_targets_is_refused()
    {
        using var repository = new TufTestRepository();
        var firstSnapshot = repository.Files["1.snapshot.json"];
        repository.Publish();
        var store = new InMemoryTrustStore();
        await repository.Client(store).RefreshAsync(Ct);

        // The holder of the timestamp key signs a fresh timestamp pointing at the first snapshot.
        repository.Files["timestamp.json"] = repository.Timestamp(10, MetaFileInfo.Of(1, firstSnapshot));
        Assert.AreEqual(TufFailure.Rollback, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct))).Failure);

        // The holder of the snapshot and timestamp keys signs a new snapshot naming the first targets.
        var snapshot = new SnapshotMetadata(3, repository.Time.GetUtcNow().AddDays(7), new Dictionary<string, MetaFileInfo>
        {
            [SnapshotMetadata.TargetsFile] = MetaFileInfo.Of(1, repository.Files["1.targets.json"]),
        }).Sign([repository.SnapshotKey]);
        repository.Files["3.snapshot.json"] = snapshot;
        repository.Files["timestamp.json"] = repository.Timestamp(11, MetaFileInfo.Of(3, snapshot));
        Assert.AreEqual(TufFailure.Rollback, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct))).Failure);
        Assert.AreEqual(2, TargetsVersion(store));
    }

    [TestMethod]
    public async Task Rollback_a_root_file_that_is_not_the_version_its_name_says_is_refused()
    {
        using var repository = new TufTestRepository();
        var store = new InMemoryTrustStore();
        repository.PublishRoot(repository.RootKeys.Take(2));
        await repository.Client(store).RefreshAsync(Ct);
        // 3.root.json served with root version 2's bytes (validly signed, but not the next version).
        repository.Files["3.root.json"] = repository.Files["2.root.json"];

        Assert.AreEqual(TufFailure.Rollback, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct))).Failure);
    }

    [TestMethod]
    public async Task Freeze_an_expired_timestamp_is_refused_though_validly_signed_and_the_last_trusted_set_is_kept()
    {
        using var repository = new TufTestRepository();
        var store = new InMemoryTrustStore();
        var trusted = await repository.Client(store).RefreshAsync(Ct);
        // The repository (or a mirror) keeps serving the same timestamp; a day later it has expired.
        repository.Time.Advance(TimeSpan.FromDays(1) + TimeSpan.FromSeconds(1));

        var failure = await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct));
        Assert.AreEqual(TufFailure.Freeze, failure.Failure);
        StringAssert.Contains(failure.Message, "timestamp.json");
        Assert.AreEqual(trusted.Targets.Version, TargetsVersion(store), "what was trusted before stays trusted for what already runs");

        // A root past its expiry freezes everything, whatever the timestamp says.
        repository.Publish();
        repository.Time.Advance(TimeSpan.FromDays(365));
        repository.Publish();
        Assert.AreEqual(TufFailure.Freeze, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct))).Failure);
    }

    [TestMethod]
    public async Task Mix_and_match_a_snapshot_or_targets_file_other_than_the_one_the_role_above_names_is_refused()
    {
        using var repository = new TufTestRepository();
        repository.AddTarget("dev.clippybot.counter/1.0.0.bundle", Counter, "dev.clippybot.counter", "1.0.0");
        repository.Publish();
        var genuineTargets = repository.Files["2.targets.json"];
        // Another validly signed targets version 2 (listing a different bundle) in place of the one snapshot names.
        repository.Files["2.targets.json"] = new TargetsMetadata(2, repository.Time.GetUtcNow().AddDays(30), new Dictionary<string, TargetFileInfo>
        {
            ["dev.clippybot.counter/1.0.0.bundle"] = new(3, new string('a', 64), []),
        }).Sign([repository.TargetsKey]);

        Assert.AreEqual(TufFailure.MixAndMatch, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(new InMemoryTrustStore()).RefreshAsync(Ct))).Failure);

        repository.Files["2.targets.json"] = genuineTargets;
        repository.Files["2.snapshot.json"] = repository.Files["1.snapshot.json"];
        Assert.AreEqual(TufFailure.MixAndMatch, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(new InMemoryTrustStore()).RefreshAsync(Ct))).Failure);
    }

    [TestMethod]
    public async Task Endless_data_no_metadata_file_may_be_larger_than_its_cap_or_than_the_length_the_role_above_states()
    {
        using var repository = new TufTestRepository();
        var genuine = repository.Files["timestamp.json"];
        repository.Files["timestamp.json"] = [.. genuine, .. new byte[20_000]];
        Assert.AreEqual(TufFailure.TooLarge, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(new InMemoryTrustStore()).RefreshAsync(Ct))).Failure);

        repository.Files["timestamp.json"] = genuine;
        repository.Files["1.snapshot.json"] = [.. repository.Files["1.snapshot.json"], (byte)' '];
        Assert.AreEqual(TufFailure.TooLarge, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(new InMemoryTrustStore()).RefreshAsync(Ct))).Failure);
    }

    [TestMethod]
    public async Task A_compromised_online_key_cannot_change_root_and_one_root_key_is_not_a_threshold_of_two()
    {
        using var repository = new TufTestRepository();
        var store = new InMemoryTrustStore();
        await repository.Client(store).RefreshAsync(Ct);
        // Whoever holds the registry's online keys (timestamp, snapshot, targets) writes a root that trusts only them.
        var stolen = new List<TufSigningKey> { repository.TimestampKey, repository.SnapshotKey, repository.TargetsKey };
        repository.Files["2.root.json"] = new RootMetadata(2, repository.Time.GetUtcNow().AddDays(365),
            stolen.ToDictionary(k => k.KeyId, k => k.Public, StringComparer.Ordinal),
            TufRole.All.ToDictionary(r => r, _ => new RoleKeys([repository.TimestampKey.KeyId], 1), StringComparer.Ordinal), true).Sign(stolen);
        Assert.AreEqual(TufFailure.Signature, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct))).Failure);

        // One root key's signature, even twice, is not two.
        repository.Files.Remove("2.root.json");
        var once = repository.PublishRoot([repository.RootKeys[0]]);
        var doubled = JsonNode.Parse(once)!.AsObject();
        doubled["signatures"]!.AsArray().Add(doubled["signatures"]![0]!.DeepClone());
        repository.Files["2.root.json"] = CanonicalJson.Serialize(doubled);
        Assert.AreEqual(TufFailure.Signature, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct))).Failure);
        Assert.AreEqual(1, RootVersion(store));
    }

    [TestMethod]
    public async Task Root_rotation_needs_the_old_threshold_and_the_new_one_and_a_client_walks_every_version()
    {
        using var repository = new TufTestRepository();
        var store = new InMemoryTrustStore();
        await repository.Client(store).RefreshAsync(Ct);
        var oldKeys = repository.RootKeys.ToList();
        var newKeys = new List<TufSigningKey> { TufSigningKey.Generate(), TufSigningKey.Generate(), TufSigningKey.Generate() };
        repository.RootKeys.Clear();
        repository.RootKeys.AddRange(newKeys);

        // Signed by two new keys but only one old one: refused.
        repository.PublishRoot([oldKeys[0], newKeys[0], newKeys[1]]);
        Assert.AreEqual(TufFailure.Signature, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct))).Failure);
        // Two old and only one new: refused too.
        repository.Files["2.root.json"] = repository.Root.Sign([oldKeys[0], oldKeys[1], newKeys[2]]);
        Assert.AreEqual(TufFailure.Signature, (await Assert.ThrowsExactlyAsync<TufException>(() => repository.Client(store).RefreshAsync(Ct))).Failure);

        // Two of each: accepted; then version 3, signed by the new keys alone, is walked to in the same refresh.
        repository.Files["2.root.json"] = repository.Root.Sign([oldKeys[0], oldKeys[2], newKeys[0], newKeys[2]]);
        repository.PublishRoot([newKeys[1], newKeys[2]]);
        var trusted = await repository.Client(store).RefreshAsync(Ct);
        Assert.AreEqual(3, trusted.Root.Version);
        Assert.AreEqual(3, RootVersion(store));
        foreach (var key in oldKeys)
        {
            key.Dispose();
        }
    }

    [TestMethod]
    public async Task After_a_rotated_timestamp_key_a_version_fast_forwarded_with_the_stolen_key_is_forgotten()
    {
        using var repository = new TufTestRepository();
        var store = new InMemoryTrustStore();
        await repository.Client(store).RefreshAsync(Ct);
        // The thief of the timestamp key pushes clients to version 1,000,000.
        repository.Files["timestamp.json"] = repository.Timestamp(1_000_000, MetaFileInfo.Of(1, repository.Files["1.snapshot.json"]));
        await repository.Client(store).RefreshAsync(Ct);

        // The registry rotates the timestamp key in a new root and goes on from its own version.
        repository.TimestampKey = TufSigningKey.Generate();
        repository.PublishRoot(repository.RootKeys.Take(2));
        repository.Publish();

        var trusted = await repository.Client(store).RefreshAsync(Ct);
        Assert.AreEqual(2, trusted.Timestamp.Version);
    }

    private static long TargetsVersion(InMemoryTrustStore store) => TargetsMetadata.Parse(TufEnvelope.Parse(store.Roles[TufRole.Targets], "t").Body).Version;

    private static long RootVersion(InMemoryTrustStore store) => RootMetadata.Parse(TufEnvelope.Parse(store.Roles[TufRole.Root], "r").Body).Version;
}
