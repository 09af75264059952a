using System.Text.Json;
using System.Text.Json.Nodes;
using ClippyBot.Registry.Data;
using ClippyBot.Registry.Versions;
using ClippyBot.Tuf;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Registry.Metadata;

/// <summary>
/// Signs and stores the registry's metadata: after every approval or yank a new targets (every approved version: length,
/// SHA-256, and the publisher key that must have signed it), snapshot and timestamp; in between, a fresh timestamp (and
/// snapshot and targets) before they reach half their lifetime. Replicas take turns under one advisory lock, so versions
/// never collide and never go back.
/// </summary>
public sealed class MetadataPublisher(RegistryDbContext db, RegistrySigner signer, IOptions<RegistryOptions> options, TimeProvider time, MetadataChanges changes)
{
    /// <summary>The name a version is listed under in targets.</summary>
    public static string TargetName(string pluginId, string version) => $"{pluginId}/{version}.bundle";

    /// <summary>A new targets, snapshot and timestamp from the approved versions as they are now.</summary>
    public Task PublishAsync(CancellationToken ct) => UnderLockAsync(async now =>
    {
        await PublishAllAsync(now, ct);
        return true;
    }, ct);

    /// <summary>Signs again what is past half its lifetime (or publishes the first metadata); true when anything was signed.</summary>
    public Task<bool> RefreshAsync(CancellationToken ct) => UnderLockAsync(async now =>
    {
        var latest = await db.MetadataFiles.AsNoTracking().GroupBy(f => f.Role)
            .Select(g => g.OrderByDescending(f => f.Version).First()).ToDictionaryAsync(f => f.Role, ct);
        var settings = options.Value;
        // Due at half its lifetime, or at once when the newest file is not signed by the key the root now names (after a
        // rotation clients refuse the old key's files: waiting for expiry would freeze them for days).
        bool Due(string role, TimeSpan lifetime) => !latest.TryGetValue(role, out var file) || file.Expires - now < lifetime / 2
            || !SignedBy(file.Content, KeyOf(role));
        if (Due(TufRole.Targets, settings.TargetsLifetime) || Due(TufRole.Snapshot, settings.SnapshotLifetime))
        {
            await PublishAllAsync(now, ct);
            return true;
        }
        if (Due(TufRole.Timestamp, settings.TimestampLifetime))
        {
            var snapshot = latest[TufRole.Snapshot];
            await AddTimestampAsync(latest[TufRole.Timestamp].Version + 1, MetaFileInfo.Of(snapshot.Version, snapshot.Content), now, ct);
            await db.SaveChangesAsync(ct);
            return true;
        }
        return false;
    }, ct);

    private static bool SignedBy(byte[] content, TufSigningKey key)
    {
        try
        {
            return TufEnvelope.Parse(content, "stored metadata").Signatures.Any(g => g.KeyId == key.KeyId);
        }
        catch (TufException)
        {
            // A stored file that does not even parse is signed again.
            return false;
        }
    }

    private TufSigningKey KeyOf(string role) => role switch
    {
        TufRole.Targets => signer.Targets,
        TufRole.Snapshot => signer.Snapshot,
        _ => signer.Timestamp,
    };

    private long _timestampWritten;

    private async Task<T> UnderLockAsync<T>(Func<DateTimeOffset, Task<T>> work, CancellationToken ct)
    {
        var strategy = db.Database.CreateExecutionStrategy();
        return await strategy.ExecuteAsync(async () =>
        {
            db.ChangeTracker.Clear();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_xact_lock(hashtext('clippybot-registry-metadata'))", ct);
            // During a key rotation, replicas still configured with the old root must not sign over the new keys' files.
            var newestRoot = await db.MetadataFiles.MaxAsync(f => (long?)f.RootVersion, ct) ?? 0;
            if (newestRoot > signer.Root.Version)
            {
                throw new InvalidOperationException($"Metadata signed under root version {newestRoot} is in use; this replica holds root version {signer.Root.Version} and signs nothing.");
            }
            _timestampWritten = 0;
            var result = await work(time.GetUtcNow());
            await tx.CommitAsync(ct);
            if (_timestampWritten > 0)
            {
                // PluginHosts waiting at /tuf/changes on this replica learn of it at once.
                changes.Published(_timestampWritten);
            }
            return result;
        });
    }

    private async Task PublishAllAsync(DateTimeOffset now, CancellationToken ct)
    {
        var settings = options.Value;
        var versions = await db.MetadataFiles.AsNoTracking().GroupBy(f => f.Role)
            .Select(g => new { Role = g.Key, Version = g.Max(f => f.Version) }).ToDictionaryAsync(v => v.Role, v => v.Version, ct);
        long Next(string role) => versions.GetValueOrDefault(role) + 1;

        var approved = await (from v in db.Versions.AsNoTracking()
                              where v.Status == VersionStatus.Approved
                              join k in db.PublisherKeys.AsNoTracking() on v.SignerKeyId equals k.KeyId
                              join p in db.Publishers.AsNoTracking() on v.PublisherId equals p.Id
                              where k.RevokedAt == null
                              orderby v.PluginId, v.Version
                              select new { v.PluginId, v.Version, v.Length, v.Sha256, v.PermissionsJson, v.DecidedAt, k.KeyId, k.PublicKey, Publisher = p.Name })
                              .ToListAsync(ct);
        var targets = new TargetsMetadata(Next(TufRole.Targets), now + settings.TargetsLifetime, approved.ToDictionary(
            a => TargetName(a.PluginId, a.Version),
            a => new TargetFileInfo(a.Length, a.Sha256, new JsonObject
            {
                ["plugin"] = a.PluginId,
                ["version"] = a.Version,
                ["publisher"] = a.Publisher,
                ["publisher_key_id"] = a.KeyId,
                ["publisher_key"] = Convert.ToBase64String(a.PublicKey),
                ["permissions"] = JsonNode.Parse(a.PermissionsJson),
                ["approved_at"] = a.DecidedAt?.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture),
            }), StringComparer.Ordinal));
        // Why versions were withdrawn, signed with the listing: each PluginHost shows it to the workspaces that used them.
        var withdrawn = await db.Versions.AsNoTracking().Where(v => v.Status == VersionStatus.Yanked && v.YankReason != null)
            .OrderByDescending(v => v.YankedAt).Take(1000).Select(v => new { v.PluginId, v.Version, v.YankReason }).ToListAsync(ct);
        targets = targets with { Withdrawn = withdrawn.ToDictionary(w => TargetName(w.PluginId, w.Version), w => w.YankReason!, StringComparer.Ordinal) };
        var targetsFile = targets.Sign([signer.Targets]);
        Add(TufRole.Targets, targets.Version, targetsFile, targets.Expires, now);

        var snapshot = new SnapshotMetadata(Next(TufRole.Snapshot), now + settings.SnapshotLifetime,
            new Dictionary<string, MetaFileInfo>(StringComparer.Ordinal) { [SnapshotMetadata.TargetsFile] = MetaFileInfo.Of(targets.Version, targetsFile) });
        var snapshotFile = snapshot.Sign([signer.Snapshot]);
        Add(TufRole.Snapshot, snapshot.Version, snapshotFile, snapshot.Expires, now);

        await AddTimestampAsync(Next(TufRole.Timestamp), MetaFileInfo.Of(snapshot.Version, snapshotFile), now, ct);
        await db.SaveChangesAsync(ct);
    }

    private async Task AddTimestampAsync(long version, MetaFileInfo snapshot, DateTimeOffset now, CancellationToken ct)
    {
        var timestamp = new TimestampMetadata(version, now + options.Value.TimestampLifetime, snapshot);
        _timestampWritten = version;
        Add(TufRole.Timestamp, version, timestamp.Sign([signer.Timestamp]), timestamp.Expires, now);
        // Older files than the kept window are gone: clients only ever fetch what the newest timestamp leads to.
        var keep = options.Value.KeptVersions;
        foreach (var role in new[] { TufRole.Timestamp, TufRole.Snapshot, TufRole.Targets })
        {
            var newest = await db.MetadataFiles.Where(f => f.Role == role).MaxAsync(f => (long?)f.Version, ct) ?? 0;
            await db.MetadataFiles.Where(f => f.Role == role && f.Version <= newest - keep).ExecuteDeleteAsync(ct);
        }
    }

    private void Add(string role, long version, byte[] content, DateTimeOffset expires, DateTimeOffset now) =>
        db.MetadataFiles.Add(new MetadataFile { Role = role, Version = version, Content = content, Expires = expires, CreatedAt = now, RootVersion = signer.Root.Version });

    internal static string PermissionsJson(IEnumerable<ClippyBot.Plugins.Bundles.PermissionRequest> permissions) =>
        JsonSerializer.Serialize(permissions, ClippyBot.Plugins.Bundles.PluginManifest.Json);
}
