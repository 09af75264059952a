using ClippyBot.Security;
using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using ClippyBot.Api.ApiKeys;
using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Audit;

/// <summary>Appends to and verifies the hash-chained audit log (one home for the chain rules).</summary>
public sealed class AuditLog(ApiDbContext db, Privacy.SubjectKeys subjectKeys, TimeProvider time, IHttpContextAccessor http, AuditChainKey key,
    ClippyBot.ServiceDefaults.Detection.SecuritySignals signals)
{
    private static readonly byte[] Genesis = HashChain.Genesis;

    /// <summary>Appends an event by the current caller to the chain of <paramref name="workspaceId"/>.</summary>
    public async Task RecordAsync(Guid? workspaceId, string action, string target, string outcome = "success", CancellationToken ct = default)
    {
        // Bounded by truncation with a marker, never by an exception: a refusal must be recorded whatever the input was.
        action = Bounded(action, AuditEntry.ActionLength);
        target = Bounded(target, AuditEntry.TargetLength);
        outcome = Bounded(outcome, AuditEntry.OutcomeLength);
        var context = http.HttpContext;
        var user = context?.User;
        var (actorType, actorId) = user?.Identity?.IsAuthenticated == true
            ? user.IsApiKey() ? ("api_key", user.FindFirstValue(ApiKeyClaims.KeyId)!)
                : Operations.OperatorCaller.HasOperationsScope(user) ? ("operator", Operations.OperatorCaller.Actor(user, context))
                : ("user", user.FindFirstValue("sub")!)
            : ("system", "clippybot-api");
        var chain = workspaceId ?? Guid.Empty;
        // Postgres keeps microseconds: truncate now, so the hash covers exactly what is stored.
        var at = Truncate(time.GetUtcNow());
        var ip = context?.Connection.RemoteIpAddress?.ToString() ?? "";
        byte[]? ipSealed = null;
        if (actorType == "user" && ip.Length > 0)
        {
            // A person's address is theirs: sealed under their key, or not kept at all once they are erased.
            ipSealed = await subjectKeys.SealAsync(actorId, ip, IpContext(chain, at), ct);
            ip = "";
        }

        long entryId = 0;
        var strategy = db.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            // Appends to one chain are serialised, so every entry links to the one before it.
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock(hashtextextended({chain.ToString()}, 0))", ct);
            var previous = await db.AuditEntries.Where(e => e.ChainId == chain).OrderByDescending(e => e.Id).Select(e => e.Hash).FirstOrDefaultAsync(ct) ?? Genesis;
            var entry = new AuditEntry
            {
                ChainId = chain,
                At = at,
                ActorType = actorType,
                ActorId = Bounded(actorId, AuditEntry.ActorIdLength),
                Action = action,
                Target = target,
                Outcome = outcome,
                IpAddress = ip,
                IpSealed = ipSealed,
                PreviousHash = previous,
                Hash = [],
                Keyed = true,
            };
            entry.Hash = ComputeHash(previous, entry);
            db.AuditEntries.Add(entry);
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
            entryId = entry.Id;
        });
        // Every audited action is a signal the alert rules can count (mass erasures, role changes, key rotations…); the
        // sample names the entry, so an alert leads back to the chain.
        signals.Raise(ClippyBot.Contracts.SecuritySignalNames.Audit(action, outcome), actorId, AuditSample(chain, entryId));
    }

    /// <summary>A signal sample that names an audit entry: <c>audit:{chain}:{entry id}</c>.</summary>
    public static string AuditSample(Guid chain, long entryId) => string.Create(CultureInfo.InvariantCulture, $"audit:{chain}:{entryId}");

    /// <summary>Where a chain does not hold: the entry and why; or null when every link and every anchor holds.</summary>
    public sealed record Break(long? EntryId, string Reason);

    /// <summary>
    /// Walks a chain from the start, checking every link with the key and every anchor Identity holds for it: the first
    /// entry whose link does not hold, an anchored entry that is missing (removed — also when the chain grew again after
    /// it: the Api links a new entry to whatever is last) or changed (rewritten), or an unkeyed entry after a keyed one
    /// (a downgrade) — or null when all hold. Anchors never outnumber entries, so this stays one pass over the chain.
    /// </summary>
    public async Task<Break?> FindFirstBreakAsync(Guid chainId, IReadOnlyList<AuditAnchor> anchors, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(anchors);
        var anchored = anchors.GroupBy(a => a.EntryId).ToDictionary(g => g.Key, g => g.Select(a => a.Hash).ToList());
        var unvisited = new Queue<long>(anchored.Keys.Order());
        var previous = Genesis;
        var keyedSeen = false;
        await foreach (var entry in db.AuditEntries.AsNoTracking().Where(e => e.ChainId == chainId).OrderBy(e => e.Id).AsAsyncEnumerable().WithCancellation(ct))
        {
            if (unvisited.TryPeek(out var expected) && expected < entry.Id)
            {
                return new Break(expected, "was anchored in Identity but is missing (entries were removed)");
            }
            if (unvisited.TryPeek(out expected) && expected == entry.Id)
            {
                unvisited.Dequeue();
            }
            if (keyedSeen && !entry.Keyed)
            {
                return new Break(entry.Id, "an entry without the chain key follows keyed entries");
            }
            keyedSeen |= entry.Keyed;
            if (!CryptographicOperations.FixedTimeEquals(entry.PreviousHash, previous))
            {
                return new Break(entry.Id, "does not link to the entry before it (an entry was removed or reordered)");
            }
            if (!CryptographicOperations.FixedTimeEquals(entry.Hash, ComputeHash(previous, entry)))
            {
                return new Break(entry.Id, "its contents do not match its hash (it was changed)");
            }
            if (anchored.TryGetValue(entry.Id, out var hashes) && hashes.Any(h => !CryptographicOperations.FixedTimeEquals(h, entry.Hash)))
            {
                return new Break(entry.Id, "differs from the hash anchored in Identity (the chain was rewritten)");
            }
            previous = entry.Hash;
        }
        return unvisited.TryPeek(out var missing)
            ? new Break(missing, "was anchored in Identity but is missing (the chain was truncated)")
            : null;
    }

    /// <summary>
    /// Whether a chain's newest entry is one the Api wrote: keyed, its hash right under the key, and linked to the entry
    /// before it. Only such a head is anchored — a row forged into apidb (say with a huge id) must never become an anchor
    /// that leaves the chain looking truncated for good.
    /// </summary>
    public async Task<bool> HeadHoldsAsync(AuditEntry head, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(head);
        var previous = await db.AuditEntries.AsNoTracking().Where(e => e.ChainId == head.ChainId && e.Id < head.Id)
            .OrderByDescending(e => e.Id).Select(e => e.Hash).FirstOrDefaultAsync(ct) ?? Genesis;
        return head.Keyed && CryptographicOperations.FixedTimeEquals(head.PreviousHash, previous)
            && CryptographicOperations.FixedTimeEquals(head.Hash, ComputeHash(previous, head));
    }

    private byte[] ComputeHash(byte[] previous, AuditEntry e) =>
        // Entries from before the chain was keyed keep their plain hash; none may follow a keyed one (checked above).
        e.Keyed ? HashChain.Link(key.Key, previous, Canonical(e)) : SHA256.HashData([.. previous, .. Encoding.UTF8.GetBytes(Canonical(e))]);

    /// <summary>An entry's canonical form: length-prefixed fields, so no two different entries share one. Not secret —
    /// the key is what an attacker lacks.</summary>
    public static string Canonical(AuditEntry e)
    {
        ArgumentNullException.ThrowIfNull(e);
        var canonical = HashChain.Canonical(
            e.ChainId.ToString(), e.At.UtcTicks.ToString(CultureInfo.InvariantCulture), e.ActorType, e.ActorId, e.Action, e.Target, e.Outcome, e.IpAddress);
        // Only entries with a sealed address carry this field, so entries written before it keep their hashes.
        return e.IpSealed is { } sealedIp ? canonical + "ip-sealed=" + HashChain.Canonical(Convert.ToBase64String(sealedIp)) : canonical;
    }

    /// <summary>The address of a person-actor's entry, or "" when it was never kept or its owner has been erased.</summary>
    public async Task<string> ReadIpAddressAsync(AuditEntry entry, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return entry.IpSealed is { } sealedIp
            ? await subjectKeys.OpenAsync(entry.ActorId, sealedIp, IpContext(entry.ChainId, entry.At), ct) ?? ""
            : entry.IpAddress;
    }

    private static string IpContext(Guid chain, DateTimeOffset at) =>
        $"AuditEntries/IpAddress/{chain:N}/{at.UtcTicks.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>Marks where a value was cut, so a reader knows the field held more.</summary>
    public const string TruncationMarker = "…[truncated]";

    /// <summary><paramref name="value"/> cut to <paramref name="max"/> characters with <see cref="TruncationMarker"/>, never inside a surrogate pair.</summary>
    public static string Bounded(string value, int max)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.Length <= max)
        {
            return value;
        }
        var keep = max - TruncationMarker.Length;
        if (char.IsHighSurrogate(value[keep - 1]))
        {
            keep--;
        }
        return string.Concat(value.AsSpan(0, keep), TruncationMarker);
    }

    private static DateTimeOffset Truncate(DateTimeOffset value) => new(value.UtcTicks - value.UtcTicks % 10, TimeSpan.Zero);
}

/// <summary>The audit chain's HMAC key, derived from <c>Audit:ChainKey</c> (generated by the AppHost; never in the database).</summary>
public sealed class AuditChainKey(byte[] key)
{
    public byte[] Key { get; } = key;

    public static AuditChainKey FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var secret = configuration["Audit:ChainKey"] ?? "";
        if (secret.Length < 43)
        {
            throw new InvalidOperationException("Audit:ChainKey must be a random secret of at least 43 characters (the AppHost generates one); the audit chain is keyed with it.");
        }
        return new(ClippyBot.Security.KeyDerivation.DeriveKey(secret, "clippybot-api", "audit-chain"));
    }
}

/// <summary>A chain head as Identity keeps it: the entry and its hash at the time it was anchored.</summary>
public sealed record AuditAnchor(long EntryId, byte[] Hash, DateTimeOffset At);
