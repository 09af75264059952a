using System.Globalization;
using System.Security.Claims;
using ClippyBot.Registry.Data;
using ClippyBot.Security;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;

namespace ClippyBot.Registry.Publishers;

/// <summary>The one way the registry's endpoints and pages record what they allowed and refused: its keyed hash chain.</summary>
public static class RegistryAudit
{
    /// <summary>Serialises appends across replicas (one chain): every entry links to the one before it.</summary>
    private const long ChainLock = 0x636c_6970_7079_6175;

    /// <summary>The person's subject at Identity, or "anonymous".</summary>
    public static string Subject(ClaimsPrincipal user) => user?.FindFirstValue("sub") ?? "anonymous";

    public static async Task RecordAsync(RegistryDbContext db, TimeProvider time, ClaimsPrincipal user, string action, bool allowed, string detail, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(detail);
        var key = ChainKey(db);
        // Postgres keeps microseconds: truncate now, so the hash covers exactly what is stored.
        var now = time.GetUtcNow();
        var entry = new RegistryAuditEntry
        {
            At = new DateTimeOffset(now.UtcTicks - now.UtcTicks % 10, TimeSpan.Zero), Actor = Bounded(Subject(user), 100), Action = Bounded(action, 64),
            Outcome = allowed ? "allowed" : "refused", Detail = Bounded(detail, 500), Keyed = true,
        };
        // The caller's own unsaved changes are not this entry's business: it is written on its own.
        var strategy = db.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({ChainLock})", ct);
            entry.PreviousHash = await db.Audit.OrderByDescending(e => e.Id).Select(e => e.Hash).FirstOrDefaultAsync(ct) is { Length: > 0 } last ? last : HashChain.Genesis;
            entry.Hash = HashChain.Link(key.Key, entry.PreviousHash, Canonical(entry));
            db.Audit.Add(entry);
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
        });
        db.Entry(entry).State = EntityState.Detached;
    }

    /// <summary>Where the chain does not hold (the entry and why), or null when every link holds.</summary>
    public sealed record Break(long EntryId, string Reason);

    public static async Task<(long Entries, Break? FirstBreak)> VerifyAsync(RegistryDbContext db, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        var key = ChainKey(db);
        var previous = HashChain.Genesis;
        var keyedSeen = false;
        long count = 0;
        await foreach (var entry in db.Audit.AsNoTracking().OrderBy(e => e.Id).AsAsyncEnumerable().WithCancellation(ct))
        {
            count++;
            if (!entry.Keyed)
            {
                if (keyedSeen)
                {
                    return (count, new Break(entry.Id, "an entry without the chain key follows keyed entries"));
                }
                continue;
            }
            // The first keyed entry starts the chain (genesis): removing the oldest entries, or marking them unkeyed to
            // rewrite them, leaves a first keyed entry that links to something else.
            if (!entry.PreviousHash.AsSpan().SequenceEqual(keyedSeen ? previous : HashChain.Genesis))
            {
                return (count, new Break(entry.Id, keyedSeen ? "does not link to the entry before it (an entry was removed or reordered)"
                    : "the chain's first keyed entry does not start it (entries before it were removed or unmarked)"));
            }
            keyedSeen = true;
            if (!HashChain.Holds(key.Key, entry.PreviousHash, Canonical(entry), entry.Hash))
            {
                return (count, new Break(entry.Id, "its contents do not match its hash (it was changed)"));
            }
            previous = entry.Hash;
        }
        return (count, null);
    }

    /// <summary>The key from the application's services (a singleton), reached through the context every caller already has.</summary>
    private static AuditChainKey ChainKey(RegistryDbContext db) =>
        db.GetService<Microsoft.EntityFrameworkCore.Infrastructure.IDbContextOptions>().FindExtension<Microsoft.EntityFrameworkCore.Infrastructure.CoreOptionsExtension>()
            ?.ApplicationServiceProvider?.GetService<AuditChainKey>()
        ?? throw new InvalidOperationException("The registry's audit chain key is not registered.");

    private static string Canonical(RegistryAuditEntry e) =>
        HashChain.Canonical(e.At.UtcTicks.ToString(CultureInfo.InvariantCulture), e.Actor, e.Action, e.Outcome, e.Detail);

    /// <summary>Cut to the column's length, never inside a surrogate pair: a refusal is recorded whatever the input was.</summary>
    private static string Bounded(string value, int max) =>
        value.Length <= max ? value : value[..(char.IsHighSurrogate(value[max - 1]) ? max - 1 : max)];
}

/// <summary>The registry audit chain's HMAC key, derived from <c>Registry:AuditChainKey</c> (the AppHost generates it).</summary>
public sealed class AuditChainKey(byte[] key)
{
    public byte[] Key { get; } = key;

    public static AuditChainKey FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var secret = configuration["Registry:AuditChainKey"] ?? "";
        return secret.Length < 43
            ? throw new InvalidOperationException("Registry:AuditChainKey must be a random secret of at least 43 characters (the AppHost generates one); the registry's audit chain is keyed with it.")
            : new(KeyDerivation.DeriveKey(secret, "clippybot-registry", "audit-chain"));
    }
}
