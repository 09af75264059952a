using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Audit;

/// <summary>
/// Anchors every audit chain's head outside the Api's database: every <c>Audit:AnchorInterval</c> (default one minute)
/// each chain that grew since its last anchor has its newest entry id and hash recorded in Identity, append-only, where
/// the Api's database role cannot write — and only a head that passes its key and link check. Verification compares the
/// chain with every anchor, so truncating it, cutting and regrowing it, or rewriting it consistently, is found — up to
/// the entries written since the last anchor.
/// </summary>
public sealed partial class AuditAnchoring(IServiceScopeFactory scopes, IConfiguration configuration, TimeProvider time, ILogger<AuditAnchoring> logger)
    : PeriodicService(configuration, time, logger)
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<Guid, long> _anchored = new();

    protected override string IntervalKey => "Audit:AnchorInterval";

    protected override TimeSpan DefaultInterval => TimeSpan.FromMinutes(1);

    protected override Task RunOnceAsync(CancellationToken ct) => AnchorAsync(ct);

    /// <summary>Anchors the head of every chain that grew since this replica last anchored it; returns how many.</summary>
    public async Task<int> AnchorAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        var identity = scope.ServiceProvider.GetRequiredService<Containment.IdentityServiceClient>();
        var log = scope.ServiceProvider.GetRequiredService<AuditLog>();
        var heads = await db.AuditEntries.AsNoTracking().GroupBy(e => e.ChainId).Select(g => g.Max(e => e.Id)).ToListAsync(ct);
        var anchored = 0;
        foreach (var head in await db.AuditEntries.AsNoTracking().Where(e => heads.Contains(e.Id)).ToListAsync(ct))
        {
            if (_anchored.GetValueOrDefault(head.ChainId) >= head.Id)
            {
                continue;
            }
            if (!await log.HeadHoldsAsync(head, ct))
            {
                // Not the Api's writing: never anchored (/verify names it). A later real entry links to it and is anchored
                // in its place, which keeps the forged row inside the verified chain, where its failed key check shows.
                LogHeadRefused(logger, head.ChainId, head.Id);
                continue;
            }
            await identity.AnchorAsync(head.ChainId, head.Id, head.Hash, ct);
            _anchored[head.ChainId] = head.Id;
            anchored++;
        }
        return anchored;
    }

    [LoggerMessage(LogLevel.Warning, "Audit chain {ChainId}: its newest entry {EntryId} fails its key or link check and was not anchored; verify the chain")]
    private static partial void LogHeadRefused(ILogger logger, Guid chainId, long entryId);
}
