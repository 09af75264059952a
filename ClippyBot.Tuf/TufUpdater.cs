using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace ClippyBot.Tuf;

/// <summary>Where metadata and targets come from (the registry over HTTP). Returns null when the file is not there.</summary>
public interface ITufRemote
{
    /// <summary>Reads at most <paramref name="maxLength"/> bytes; a longer file is <see cref="TufFailure.TooLarge"/>, never read to its end.</summary>
    Task<byte[]?> FetchAsync(string name, long maxLength, CancellationToken ct);
}

/// <summary>The client's trusted metadata, kept across restarts: rollback protection is only as good as this memory.</summary>
public interface ITufTrustStore
{
    Task<byte[]?> LoadAsync(string role, CancellationToken ct);

    Task SaveAsync(string role, byte[] metadata, CancellationToken ct);

    Task DeleteAsync(string role, CancellationToken ct);
}

/// <summary>Upper bounds for every fetch ("endless data"), and how many root versions one refresh may walk.</summary>
public sealed record TufLimits
{
    public long RootMaxLength { get; init; } = 512 * 1024;
    public long TimestampMaxLength { get; init; } = 16 * 1024;
    /// <summary>Used only when timestamp does not give snapshot's length (the registry always does).</summary>
    public long SnapshotMaxLength { get; init; } = 2 * 1024 * 1024;
    /// <summary>Used only when snapshot does not give targets' length.</summary>
    public long TargetsMaxLength { get; init; } = 32 * 1024 * 1024;
    public int MaxRootRotations { get; init; } = 32;
}

/// <summary>The metadata a refresh ended with, all verified together against one root.</summary>
public sealed record TufTrustedSet(RootMetadata Root, TimestampMetadata Timestamp, SnapshotMetadata Snapshot, TargetsMetadata Targets)
{
    /// <summary>The listing for <paramref name="name"/> if <paramref name="content"/> is exactly the file targets vouches for.</summary>
    public TargetFileInfo VerifyTarget(string name, ReadOnlySpan<byte> content)
    {
        if (!Targets.Targets.TryGetValue(name, out var info))
        {
            throw new TufException(TufFailure.Target, $"{name} is not listed in targets version {Targets.Version}.");
        }
        if (content.Length != info.Length || Convert.ToHexStringLower(SHA256.HashData(content)) != info.Sha256)
        {
            throw new TufException(TufFailure.Target, $"{name} is not the file targets version {Targets.Version} lists (length or SHA-256 differ).");
        }
        return info;
    }

    /// <summary>The name a consistent-snapshot repository serves a target under.</summary>
    public static string TargetFileName(string name, string sha256)
    {
        var slash = name.LastIndexOf('/');
        return slash < 0 ? $"{sha256}.{name}" : $"{name[..(slash + 1)]}{sha256}.{name[(slash + 1)..]}";
    }
}

/// <summary>
/// The client workflow of the TUF specification (§5): from the pinned root, walk root versions one by one (each signed by
/// the old and the new root's threshold), then timestamp, snapshot and targets, refusing rollback, freeze, mix-and-match,
/// oversized files and too few signatures. Each role is persisted only after all its checks passed.
/// </summary>
/// <param name="previous">The set this client verified last (kept in memory): unchanged targets are taken from it without parsing again.</param>
public sealed class TufUpdater(ITufRemote remote, ITufTrustStore store, byte[] pinnedRoot, TimeProvider time, TufLimits? limits = null, TufTrustedSet? previous = null)
{
    private readonly TufLimits _limits = limits ?? new TufLimits();

    public async Task<TufTrustedSet> RefreshAsync(CancellationToken ct)
    {
        // One reference time for the whole refresh (§5.1).
        var now = time.GetUtcNow();
        var root = await UpdateRootAsync(ct);
        if (root.Expires <= now)
        {
            throw new TufException(TufFailure.Freeze, $"Root version {root.Version} expired at {TufJson.FormatExpires(root.Expires)}.");
        }
        var timestamp = await UpdateTimestampAsync(root, now, ct);
        var snapshot = await UpdateSnapshotAsync(root, timestamp, now, ct);
        var targets = await UpdateTargetsAsync(root, snapshot, now, ct);
        return new TufTrustedSet(root, timestamp, snapshot, targets);
    }

    /// <summary>
    /// What the store holds, verified against the stored root, without fetching anything and without expiry checks: what a
    /// client already runs stays runnable while the repository is unreachable or frozen. Null when nothing complete is stored.
    /// </summary>
    public async Task<TufTrustedSet?> LoadStoredAsync(CancellationToken ct)
    {
        var pinned = ReadRoot(pinnedRoot, null, "the pinned root");
        var stored = await store.LoadAsync(TufRole.Root, ct) is { } bytes ? ReadRoot(bytes, null, "the stored root") : null;
        var root = stored is not null && stored.Version >= pinned.Version ? stored : pinned;
        var timestamp = await LoadTrustedAsync(TufRole.Timestamp, root, TimestampMetadata.Parse, ct);
        var snapshot = await LoadTrustedAsync(TufRole.Snapshot, root, SnapshotMetadata.Parse, ct);
        var targets = await LoadTrustedAsync(TufRole.Targets, root, TargetsMetadata.Parse, ct);
        // Each file verified on its own: a refresh interrupted between them (a timestamp stored, its snapshot never
        // fetched) must not leave a restarted client running nothing. Installs never start from this set.
        return timestamp is null || snapshot is null || targets is null ? null : new TufTrustedSet(root, timestamp, snapshot, targets);
    }

    private async Task<RootMetadata> UpdateRootAsync(CancellationToken ct)
    {
        var pinned = ReadRoot(pinnedRoot, null, "the pinned root");
        var stored = await store.LoadAsync(TufRole.Root, ct) is { } bytes ? ReadRoot(bytes, null, "the stored root") : null;
        // A newer pinned root (configuration changed) wins over what was stored.
        var trusted = stored is not null && stored.Version >= pinned.Version ? stored : pinned;
        var start = trusted;
        for (var round = 0; round < _limits.MaxRootRotations; round++)
        {
            var next = trusted.Version + 1;
            var fetched = await remote.FetchAsync($"{next}.root.json", _limits.RootMaxLength, ct);
            if (fetched is null)
            {
                break;
            }
            CheckLength(fetched, _limits.RootMaxLength, $"{next}.root.json");
            var candidate = ReadRoot(fetched, trusted, $"{next}.root.json");
            if (candidate.Version != next)
            {
                throw new TufException(TufFailure.Rollback, $"{next}.root.json says version {candidate.Version}.");
            }
            trusted = candidate;
            await store.SaveAsync(TufRole.Root, fetched, ct);
        }
        if (stored is null && trusted == pinned)
        {
            await store.SaveAsync(TufRole.Root, pinnedRoot, ct);
        }
        if (trusted.Version != start.Version)
        {
            // Fast-forward recovery (§5.3.11): once the online roles' keys change, versions signed by the old keys are forgotten.
            if (!SameKeys(start, trusted, TufRole.Timestamp) || !SameKeys(start, trusted, TufRole.Snapshot))
            {
                await store.DeleteAsync(TufRole.Timestamp, ct);
                await store.DeleteAsync(TufRole.Snapshot, ct);
            }
            if (!SameKeys(start, trusted, TufRole.Targets))
            {
                await store.DeleteAsync(TufRole.Targets, ct);
            }
        }
        return trusted;
    }

    /// <summary>A root is trusted when the trusted root's threshold signed it and its own threshold did too (§5.3.5).</summary>
    private static RootMetadata ReadRoot(byte[] bytes, RootMetadata? trusted, string what)
    {
        var envelope = TufEnvelope.Parse(bytes, what);
        var root = RootMetadata.Parse(envelope.Body);
        if (trusted is not null)
        {
            envelope.RequireThreshold(trusted, TufRole.Root, what);
        }
        envelope.RequireThreshold(root, TufRole.Root, what);
        return root;
    }

    private static bool SameKeys(RootMetadata a, RootMetadata b, string role) =>
        a.Roles[role].Threshold == b.Roles[role].Threshold && a.Roles[role].KeyIds.Order(StringComparer.Ordinal).SequenceEqual(b.Roles[role].KeyIds.Order(StringComparer.Ordinal));

    private async Task<TimestampMetadata> UpdateTimestampAsync(RootMetadata root, DateTimeOffset now, CancellationToken ct)
    {
        var trusted = await LoadTrustedAsync(TufRole.Timestamp, root, TimestampMetadata.Parse, ct);
        var fetched = await remote.FetchAsync("timestamp.json", _limits.TimestampMaxLength, ct)
            ?? throw new TufException(TufFailure.Missing, "The repository serves no timestamp.json.");
        CheckLength(fetched, _limits.TimestampMaxLength, "timestamp.json");
        var envelope = TufEnvelope.Parse(fetched, "timestamp.json");
        envelope.RequireThreshold(root, TufRole.Timestamp, "timestamp.json");
        var timestamp = TimestampMetadata.Parse(envelope.Body);
        if (trusted is not null)
        {
            if (timestamp.Version < trusted.Version)
            {
                throw new TufException(TufFailure.Rollback, $"timestamp.json version {timestamp.Version} is older than the trusted {trusted.Version}.");
            }
            if (timestamp.Snapshot.Version < trusted.Snapshot.Version)
            {
                throw new TufException(TufFailure.Rollback, $"timestamp.json names snapshot version {timestamp.Snapshot.Version}, older than the trusted {trusted.Snapshot.Version}.");
            }
        }
        if (timestamp.Expires <= now)
        {
            throw new TufException(TufFailure.Freeze, $"timestamp.json version {timestamp.Version} expired at {TufJson.FormatExpires(timestamp.Expires)}.");
        }
        if (trusted is null || timestamp.Version > trusted.Version)
        {
            await store.SaveAsync(TufRole.Timestamp, fetched, ct);
        }
        return timestamp;
    }

    private async Task<SnapshotMetadata> UpdateSnapshotAsync(RootMetadata root, TimestampMetadata timestamp, DateTimeOffset now, CancellationToken ct)
    {
        var trusted = await LoadTrustedAsync(TufRole.Snapshot, root, SnapshotMetadata.Parse, ct);
        var expected = timestamp.Snapshot;
        SnapshotMetadata snapshot;
        if (trusted is not null && trusted.Version == expected.Version && await store.LoadAsync(TufRole.Snapshot, ct) is { } kept && Matches(kept, expected))
        {
            snapshot = trusted;
        }
        else
        {
            var name = root.ConsistentSnapshot ? $"{expected.Version}.snapshot.json" : TimestampMetadata.SnapshotFile;
            var fetched = await FetchBoundAsync(name, expected, _limits.SnapshotMaxLength, ct);
            var envelope = TufEnvelope.Parse(fetched, name);
            envelope.RequireThreshold(root, TufRole.Snapshot, name);
            snapshot = SnapshotMetadata.Parse(envelope.Body);
            if (snapshot.Version != expected.Version)
            {
                throw new TufException(TufFailure.MixAndMatch, $"{name} is version {snapshot.Version}; timestamp names {expected.Version}.");
            }
            if (trusted is not null)
            {
                foreach (var (file, old) in trusted.Meta)
                {
                    if (!snapshot.Meta.TryGetValue(file, out var current) || current.Version < old.Version)
                    {
                        throw new TufException(TufFailure.Rollback, $"{name} drops {file} or names a version older than the trusted {old.Version}.");
                    }
                }
            }
            CheckExpiry(snapshot, name, now);
            await store.SaveAsync(TufRole.Snapshot, fetched, ct);
            return snapshot;
        }
        CheckExpiry(snapshot, "the trusted snapshot", now);
        return snapshot;
    }

    private async Task<TargetsMetadata> UpdateTargetsAsync(RootMetadata root, SnapshotMetadata snapshot, DateTimeOffset now, CancellationToken ct)
    {
        var expected = snapshot.Meta[SnapshotMetadata.TargetsFile];
        if (expected.Sha256 is not null && previous is not null && previous.Root.Version == root.Version
            && previous.Snapshot.Meta.GetValueOrDefault(SnapshotMetadata.TargetsFile) == expected)
        {
            CheckExpiry(previous.Targets, "the trusted targets", now);
            return previous.Targets;
        }
        // Unchanged targets (the usual refresh): the stored file is exactly the one the verified snapshot names by hash, so
        // its signatures need no second check — large listings are not verified again every few seconds.
        // (The file was verified when it was stored; its signers must still be the current root's targets keys.)
        if (expected.Sha256 is not null && await store.LoadAsync(TufRole.Targets, ct) is { } kept && Matches(kept, expected)
            && TufEnvelope.Parse(kept, "the stored targets") is { } stored
            && stored.Signatures.Select(g => g.KeyId).Intersect(root.Roles[TufRole.Targets].KeyIds, StringComparer.Ordinal).Count() >= root.Roles[TufRole.Targets].Threshold
            && TargetsMetadata.Parse(stored.Body) is { } unchanged && unchanged.Version == expected.Version)
        {
            CheckExpiry(unchanged, "the trusted targets", now);
            return unchanged;
        }
        var name = root.ConsistentSnapshot ? $"{expected.Version}.targets.json" : SnapshotMetadata.TargetsFile;
        var fetched = await FetchBoundAsync(name, expected, _limits.TargetsMaxLength, ct);
        var envelope = TufEnvelope.Parse(fetched, name);
        envelope.RequireThreshold(root, TufRole.Targets, name);
        var targets = TargetsMetadata.Parse(envelope.Body);
        if (targets.Version != expected.Version)
        {
            throw new TufException(TufFailure.MixAndMatch, $"{name} is version {targets.Version}; snapshot names {expected.Version}.");
        }
        CheckExpiry(targets, name, now);
        await store.SaveAsync(TufRole.Targets, fetched, ct);
        return targets;
    }

    /// <summary>A stored role's metadata, if it still verifies under the current root (a rotation may have made it stale).</summary>
    private async Task<T?> LoadTrustedAsync<T>(string role, RootMetadata root, Func<JsonObject, T> parse, CancellationToken ct) where T : TufMetadata
    {
        if (await store.LoadAsync(role, ct) is not { } bytes)
        {
            return null;
        }
        try
        {
            var envelope = TufEnvelope.Parse(bytes, $"the stored {role}");
            envelope.RequireThreshold(root, role, $"the stored {role}");
            return parse(envelope.Body);
        }
        catch (TufException)
        {
            return null;
        }
    }

    /// <summary>Fetches a file the role above describes: never more than its stated length, and exactly its hash.</summary>
    private async Task<byte[]> FetchBoundAsync(string name, MetaFileInfo expected, long fallbackMax, CancellationToken ct)
    {
        var max = expected.Length ?? fallbackMax;
        var fetched = await remote.FetchAsync(name, max, ct) ?? throw new TufException(TufFailure.Missing, $"The repository serves no {name}.");
        CheckLength(fetched, max, name);
        if (!Matches(fetched, expected))
        {
            throw new TufException(TufFailure.MixAndMatch, $"{name} is not the file the role above names (length or SHA-256 differ).");
        }
        return fetched;
    }

    private static bool Matches(byte[] bytes, MetaFileInfo expected) =>
        (expected.Length is not { } length || bytes.LongLength == length)
        && (expected.Sha256 is not { } sha256 || Convert.ToHexStringLower(SHA256.HashData(bytes)) == sha256);

    private static void CheckLength(byte[] bytes, long max, string name)
    {
        if (bytes.LongLength > max)
        {
            throw new TufException(TufFailure.TooLarge, $"{name} is larger than {max} bytes.");
        }
    }

    private static void CheckExpiry(TufMetadata metadata, string name, DateTimeOffset now)
    {
        if (metadata.Expires <= now)
        {
            throw new TufException(TufFailure.Freeze, $"{name} (version {metadata.Version}) expired at {TufJson.FormatExpires(metadata.Expires)}.");
        }
    }
}
