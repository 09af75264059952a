using System.Net;
using System.Text.Json;
using ClippyBot.Registry.Data;
using ClippyBot.Registry.Metadata;
using ClippyBot.Registry.Versions;
using ClippyBot.Tests.PluginHost;
using ClippyBot.Tests.Rig;
using ClippyBot.Tuf;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Registry;

/// <summary>
/// The registry's signed metadata as a PluginHost reads it: first-party versions that pass the automated checks are
/// listed; what fails is stored with its reasons and never listed; replicas never reuse a version; metadata is signed
/// again before it expires; keys the root does not name stop the service at start.
/// </summary>
[TestClass]
public sealed class RegistryMetadataTests
{
    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [TestMethod]
    public async Task A_client_walking_from_the_pinned_root_gets_the_first_party_versions_that_passed_every_check_and_exactly_their_bytes()
    {
        var stranger = ClippyBot.Plugins.Bundles.PluginSigning.GenerateKey();
        await using var registry = await RegistryRig.StartAsync(Ct, keys => new Dictionary<string, byte[]>
        {
            ["echo-1.0.0.cbp"] = PluginCatalogTests.Bundle("dev.clippybot.echo", "1.0.0", key: Convert.FromBase64String(keys.FirstPartyPrivateKey)),
            // Signed by a key the first-party publisher never registered: refused by the signature check.
            ["forged-1.0.0.cbp"] = PluginCatalogTests.Bundle("dev.clippybot.forged", "1.0.0", key: stranger.PrivateKey),
            // Outside every namespace the publisher owns.
            ["elsewhere-1.0.0.cbp"] = PluginCatalogTests.Bundle("com.example.elsewhere", "1.0.0", key: Convert.FromBase64String(keys.FirstPartyPrivateKey)),
        });
        using var http = registry.Factory.CreateClient();
        var store = new InMemoryTrustStore();

        TufTrustedSet trusted = null!;
        await Poll.UntilAsync(async () => (trusted = await registry.Client(store, http).RefreshAsync(Ct)).Targets.Targets.Count > 0,
            TimeSpan.FromSeconds(30), "the first-party version listed", Ct);

        var listing = trusted.Targets.Targets.Single();
        Assert.AreEqual("dev.clippybot.echo/1.0.0.bundle", listing.Key);
        Assert.AreEqual("dev.clippybot.echo", listing.Value.Custom["plugin"]!.GetValue<string>());
        Assert.AreEqual(registry.Keys.FirstPartyPublicKey, listing.Value.Custom["publisher_key"]!.GetValue<string>());
        var bundle = await http.GetByteArrayAsync(new Uri($"/tuf/targets/dev.clippybot.echo/{listing.Value.Sha256}.1.0.0.bundle", UriKind.Relative), Ct);
        trusted.VerifyTarget(listing.Key, bundle);

        await using var scope = registry.Factory.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<RegistryDbContext>();
        var forged = await db.Versions.SingleAsync(v => v.PluginId == "dev.clippybot.forged", Ct);
        Assert.AreEqual(VersionStatus.Rejected, forged.Status);
        var checks = JsonSerializer.Deserialize<List<CheckResult>>(forged.ChecksJson, ClippyBot.Plugins.Bundles.PluginManifest.Json)!;
        Assert.IsFalse(checks.Single(c => c.Check == "signature").Passed);
        StringAssert.Contains(checks.Single(c => c.Check == "signature").Detail, "registered");
        Assert.IsFalse(await db.Versions.AnyAsync(v => v.PluginId == "com.example.elsewhere", Ct), "nothing is stored under an id its publisher does not own");
        // A rejected version is not downloadable either.
        Assert.AreEqual(HttpStatusCode.NotFound, (await http.GetAsync(new Uri($"/tuf/targets/dev.clippybot.forged/{forged.Sha256}.1.0.0.bundle", UriKind.Relative), Ct)).StatusCode);
    }

    [TestMethod]
    public async Task The_timestamp_is_never_cached_versioned_files_are_immutable_and_odd_names_are_not_found()
    {
        await using var registry = await RegistryRig.StartAsync(Ct);
        using var http = registry.Factory.CreateClient();
        await Poll.UntilAsync(async () => (await http.GetAsync(new Uri("/tuf/timestamp.json", UriKind.Relative), Ct)).IsSuccessStatusCode,
            TimeSpan.FromSeconds(30), "first metadata", Ct);

        var timestamp = await http.GetAsync(new Uri("/tuf/timestamp.json", UriKind.Relative), Ct);
        Assert.IsTrue(timestamp.Headers.CacheControl!.NoStore);
        var root = await http.GetAsync(new Uri("/tuf/1.root.json", UriKind.Relative), Ct);
        Assert.IsTrue(root.Headers.CacheControl!.ToString().Contains("immutable", StringComparison.Ordinal));
        CollectionAssert.AreEqual(registry.PinnedRoot, await root.Content.ReadAsByteArrayAsync(Ct));
        foreach (var odd in new[] { "/tuf/2.root.json", "/tuf/0.targets.json", "/tuf/01.targets.json", "/tuf/99999999999999999999.snapshot.json",
            "/tuf/..%2F..%2Fappsettings.json", "/tuf/TIMESTAMP.json", "/tuf/targets/x/y", "/tuf/targets/dev.clippybot.echo/" + new string('a', 64) + ".1.0.0.bundle",
            "/tuf/" + new string('1', 5000) + ".root.json" })
        {
            var response = await http.GetAsync(new Uri(odd, UriKind.Relative), Ct);
            Assert.IsTrue(response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.BadRequest, $"{odd}: {response.StatusCode}");
        }
    }

    [TestMethod]
    public async Task Replicas_publishing_at_once_never_reuse_or_skip_a_version()
    {
        await using var registry = await RegistryRig.StartAsync(Ct);
        await using var replica = registry.Replica();
        using var probe = replica.CreateClient();
        await Poll.UntilAsync(async () => (await probe.GetAsync(new Uri("/tuf/timestamp.json", UriKind.Relative), Ct)).IsSuccessStatusCode,
            TimeSpan.FromSeconds(30), "first metadata", Ct);

        await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            await using var scope = (i % 2 == 0 ? registry.Factory : replica).Services.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<MetadataPublisher>().PublishAsync(Ct);
        }));

        await using var check = registry.Factory.Services.CreateAsyncScope();
        var db = check.ServiceProvider.GetRequiredService<RegistryDbContext>();
        foreach (var role in new[] { TufRole.Targets, TufRole.Snapshot, TufRole.Timestamp })
        {
            var versions = await db.MetadataFiles.Where(f => f.Role == role).OrderBy(f => f.Version).Select(f => f.Version).ToListAsync(Ct);
            CollectionAssert.AreEqual(Enumerable.Range((int)versions[0], versions.Count).Select(v => (long)v).ToList(), versions, $"{role}: one version after another");
            Assert.IsTrue(versions[^1] >= 17, $"{role}: all 16 publications and the first are there");
        }
    }

    [TestMethod]
    public async Task Metadata_is_signed_again_before_half_its_lifetime_so_clients_never_see_it_expire()
    {
        var clock = new ShiftedClock();
        await using var registry = await RegistryRig.StartAsync(Ct, time: clock);
        using var http = registry.Factory.CreateClient();
        var store = new InMemoryTrustStore();
        var first = await Poll.UntilAsync(async () =>
        {
            var response = await http.GetAsync(new Uri("/tuf/timestamp.json", UriKind.Relative), Ct);
            return response.IsSuccessStatusCode ? TimestampMetadata.Parse(TufEnvelope.Parse(await response.Content.ReadAsByteArrayAsync(Ct), "t").Body) : null;
        }, TimeSpan.FromSeconds(30), "first metadata", Ct);

        clock.Advance(TimeSpan.FromHours(13));

        var renewed = await Poll.UntilAsync(async () =>
        {
            var timestamp = TimestampMetadata.Parse(TufEnvelope.Parse(await http.GetByteArrayAsync(new Uri("/tuf/timestamp.json", UriKind.Relative), Ct), "t").Body);
            return timestamp.Version > first.Version ? timestamp : null;
        }, TimeSpan.FromSeconds(10), "a new timestamp after half its lifetime", Ct);
        Assert.IsTrue(renewed.Expires > clock.GetUtcNow().AddHours(23));
        // A client on the same clock refreshes without a freeze.
        await registry.Client(store, http, clock).RefreshAsync(Ct);
    }

    [TestMethod]
    public async Task A_registry_whose_online_keys_are_not_the_ones_its_root_names_does_not_start()
    {
        var folder = Directory.CreateTempSubdirectory("clippybot-registry-").FullName;
        try
        {
            var keys = ClippyBot.AppHost.Infrastructure.RegistryKeyCeremony.EnsureDevelopmentKeys(folder, TimeProvider.System);
            var other = Convert.ToBase64String(ClippyBot.Plugins.Bundles.PluginSigning.GenerateKey().PrivateKey);
            await using var factory = await ServiceFactory.WithFreshDatabaseAsync<RegistryDbContext>("registrydb",
                RegistryRig.Settings(keys, folder, new Dictionary<string, string?> { ["Registry:TimestampKey"] = other }), ct: Ct);
            var failure = Assert.ThrowsExactly<InvalidOperationException>(() => factory.CreateClient());
            StringAssert.Contains(failure.Message, "timestamp key is not the one root version 1 names");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public async Task After_a_root_names_a_new_timestamp_key_the_registry_signs_with_it_at_once_and_clients_follow()
    {
        await using var registry = await RegistryRig.StartAsync(Ct);
        using var http = registry.Factory.CreateClient();
        var store = new InMemoryTrustStore();
        await registry.Client(store, http).RefreshAsync(Ct);

        // The offline ceremony: root version 2 names a new timestamp key, signed by two root keys.
        using var newTimestamp = TufSigningKey.Generate();
        var rootKeys = Enumerable.Range(1, 3).Select(i => TufSigningKey.FromSeed(Convert.FromBase64String(File.ReadAllLines(Path.Combine(registry.Folder, $"root-{i}.key"))[0]))).ToList();
        using var targets = TufSigningKey.FromSeed(Convert.FromBase64String(registry.Keys.TargetsSeed));
        using var snapshot = TufSigningKey.FromSeed(Convert.FromBase64String(registry.Keys.SnapshotSeed));
        var root2 = TufRoots.Create(2, DateTimeOffset.UtcNow.AddDays(365), [.. rootKeys.Select(k => k.Public)], 2, targets.Public, snapshot.Public, newTimestamp.Public)
            .Sign(rootKeys.Take(2));
        rootKeys.ForEach(k => k.Dispose());
        var settings = new Dictionary<string, string?>(registry.Factory.Settings)
        {
            ["Registry:Roots:1"] = Convert.ToBase64String(root2),
            ["Registry:TimestampKey"] = Convert.ToBase64String(newTimestamp.ExportSeed()),
        };
        await using var rotated = new ServiceFactory<RegistryDbContext>(settings);
        using var rotatedHttp = rotated.CreateClient();

        // Its first check re-signs the timestamp (not due by age) with the key root 2 names; a client walks to root 2 and follows.
        var trusted = await Poll.UntilAsync(async () =>
        {
            try
            {
                var set = await registry.Client(store, rotatedHttp).RefreshAsync(Ct);
                return set.Root.Version == 2 ? set : null;
            }
            catch (TufException)
            {
                return null;
            }
        }, TimeSpan.FromSeconds(15), "the client on root 2 with a timestamp by the new key", Ct);
        Assert.AreEqual(newTimestamp.KeyId, TufEnvelope.Parse(await rotatedHttp.GetByteArrayAsync(new Uri("/tuf/timestamp.json", UriKind.Relative), Ct), "t").Signatures.Single().KeyId);
    }

    [TestMethod]
    public async Task An_anonymous_flood_is_refused_with_429_and_Retry_After_before_it_writes_audit_rows_and_bundle_downloads_have_their_own_window()
    {
        await using var registry = await RegistryRig.StartAsync(Ct, keys => new Dictionary<string, byte[]>
        {
            ["hello.cbp"] = PluginCatalogTests.Bundle("dev.clippybot.hello", "1.0.0", key: Convert.FromBase64String(keys.FirstPartyPrivateKey)),
        }, settings: new Dictionary<string, string?>
        {
            ["Registry:RateLimits:Anonymous:PermitLimit"] = "40",
            ["Registry:RateLimits:Downloads:PermitLimit"] = "3",
        });
        using var http = registry.Factory.CreateClient();
        var listing = await Poll.UntilAsync(async () =>
            (await registry.Client(new InMemoryTrustStore(), http).RefreshAsync(Ct)).Targets.Targets.Values.FirstOrDefault(), TimeSpan.FromSeconds(30), "the first-party version listed", Ct);

        // Downloads: their own, smaller window (also counted in the anonymous one).
        var downloads = new List<HttpStatusCode>();
        var path = $"/tuf/targets/dev.clippybot.hello/{listing!.Sha256}.1.0.0.bundle";
        for (var i = 0; i < 6; i++)
        {
            using var response = await http.GetAsync(new Uri(path, UriKind.Relative), Ct);
            downloads.Add(response.StatusCode);
        }
        CollectionAssert.Contains(downloads, HttpStatusCode.OK);
        CollectionAssert.Contains(downloads, HttpStatusCode.TooManyRequests);

        // An anonymous flood of refused API calls: audited while admitted, then 429 with Retry-After and no more rows.
        long AuditRows()
        {
            using var scope = registry.Factory.Services.CreateScope();
            return scope.ServiceProvider.GetRequiredService<RegistryDbContext>().Audit.LongCount();
        }
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 60; i++)
        {
            var response = await http.GetAsync(new Uri("/api/publishers/me", UriKind.Relative), Ct);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                refused ??= response;
                continue;
            }
            response.Dispose();
        }
        Assert.IsNotNull(refused, string.Join(",", statuses));
        Assert.IsTrue(refused.Headers.RetryAfter?.Delta > TimeSpan.Zero);
        Assert.AreEqual("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        StringAssert.Contains(await refused.Content.ReadAsStringAsync(Ct), ClippyBot.Contracts.ProblemTypes.RateLimited);
        refused.Dispose();
        var rows = AuditRows();
        for (var i = 0; i < 20; i++)
        {
            using var more = await http.GetAsync(new Uri("/api/publishers/me", UriKind.Relative), Ct);
            Assert.AreEqual(HttpStatusCode.TooManyRequests, more.StatusCode);
        }
        Assert.AreEqual(rows, AuditRows(), "refused by the limit: nothing written");
        Assert.AreEqual(HttpStatusCode.OK, (await http.GetAsync(new Uri("/health", UriKind.Relative), Ct)).StatusCode, "probes are not traffic");
    }
}
