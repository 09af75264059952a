using System.Data;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Authentication;
using ClippyBot.Api.Containment;
using ClippyBot.Api.Data;
using ClippyBot.Api.Workspaces;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Privacy;

/// <summary>
/// Erases a person (docs/privacy.md). In the Api, in one transaction: memberships, invitations addressed to them and their
/// exports are deleted, and an erasure record is written. Then their key is shredded (the addresses sealed under it in the
/// append-only audit log become unreadable, backups included), their tokens are revoked through the shared marker, and
/// Identity deletes the account — retried by the worker until it has happened. What stays: their subject id as a
/// pseudonym in audit entries and on things that belong to a workspace (API keys, files, secrets, connections, plugins
/// they created), so the workspace's history still holds together.
/// </summary>
public sealed partial class AccountEraser(ApiDbContext db, SubjectKeys keys, AuditLog audit, RevocationMarkers markers,
    IdentityServiceClient identity, WorkspaceStateCache cache, TimeProvider time, ILogger<AccountEraser> logger)
{
    public sealed record OwnedWorkspace(Guid Id, string Name);

    /// <summary>Workspaces the person is the only owner of: ownership goes to someone else, or the workspace is deleted, first.</summary>
    public Task<List<OwnedWorkspace>> SoleOwnershipsAsync(string subject, CancellationToken ct) =>
        db.Memberships.AsNoTracking()
            .Where(m => m.UserId == subject && m.Role == WorkspaceRole.Owner
                && !db.Memberships.Any(o => o.WorkspaceId == m.WorkspaceId && o.Role == WorkspaceRole.Owner && o.UserId != subject))
            .OrderBy(m => m.Workspace.Name)
            .Select(m => new OwnedWorkspace(m.WorkspaceId, m.Workspace.Name))
            .ToListAsync(ct);

    /// <summary>
    /// The Api's part, then Identity's. Refused (nothing changed) while the person is the sole owner of a workspace;
    /// otherwise <c>Completed</c> says whether Identity's part is done too (if not, the worker finishes it).
    /// </summary>
    public async Task<(bool Refused, List<OwnedWorkspace> Owned, bool Completed)> EraseAsync(string subject, string? email, CancellationToken ct) =>
        await EraseAsync(subject, email, requestedAt: null, ct);

    /// <summary>
    /// An erasure that <c>subjectkeysdb</c> records (a tombstone) but this <c>apidb</c> does not: apidb was restored to a
    /// moment before it (point-in-time recovery). The erasure is done again, without the sole-owner refusal — the person
    /// asked long ago and is gone at Identity — so a workspace they solely owned in the restored data is left without an
    /// owner (logged; a platform administrator assigns one).
    /// </summary>
    public async Task<List<OwnedWorkspace>> EraseAgainAsync(string subject, DateTimeOffset requestedAt, CancellationToken ct)
    {
        // Before apidb records the erasure: once it does, the start-up pass counts the person as done, so a marker or an
        // audit entry that failed after it would never be retried. Here a retry may only repeat them.
        await markers.AnnounceAsync(subject);
        await audit.RecordAsync(null, "account.erasure-reapplied", subject, ct: ct);
        var (_, orphaned, _) = await EraseAsync(subject, email: null, requestedAt, ct);
        if (orphaned.Count > 0)
        {
            LogOrphaned(logger, orphaned.Count, string.Join(", ", orphaned.Select(w => w.Id)));
        }
        return orphaned;
    }

    private async Task<(bool Refused, List<OwnedWorkspace> Owned, bool Completed)> EraseAsync(string subject, string? email, DateTimeOffset? requestedAt, CancellationToken ct)
    {
        List<OwnedWorkspace> owned = [];
        var strategy = db.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            db.ChangeTracker.Clear();
            // Serializable: a workspace created (or an ownership changed) concurrently cannot slip between check and delete.
            await using var tx = await db.Database.BeginTransactionAsync(IsolationLevel.Serializable, ct);
            owned = await SoleOwnershipsAsync(subject, ct);
            if (owned.Count > 0 && requestedAt is null)
            {
                return;
            }
            // Every address the person is known by here: the token's, and those their memberships were made with.
            var addresses = await db.Memberships.Where(m => m.UserId == subject).Select(m => m.Email).ToListAsync(ct);
            if (email is not null)
            {
                addresses.Add(email);
            }
            await db.Memberships.Where(m => m.UserId == subject).ExecuteDeleteAsync(ct);
            foreach (var address in addresses.Where(e => e.Length > 0).Distinct(StringComparer.OrdinalIgnoreCase))
            {
                await db.Invitations.AddressedTo(address).ExecuteDeleteAsync(ct);
            }
            await db.DataExports.Where(e => e.SubjectId == subject).ExecuteDeleteAsync(ct);
            // Security alerts about the account keep their rule, counts and times, but no longer name it or where the
            // attempts came from (samples hold addresses). Each gets a subject of its own, so open ones stay unique.
            await db.SecurityAlerts.Where(a => a.Subject == subject).ExecuteUpdateAsync(s => s
                .SetProperty(a => a.Subject, a => "(erased account " + a.Id.ToString() + ")")
                .SetProperty(a => a.SubjectsJson, "[]").SetProperty(a => a.SamplesJson, "[]"), ct);
            if (!await db.AccountErasures.AnyAsync(e => e.SubjectId == subject, ct))
            {
                db.AccountErasures.Add(new AccountErasure { SubjectId = subject, RequestedAt = requestedAt ?? time.GetUtcNow() });
                await db.SaveChangesAsync(ct);
            }
            await tx.CommitAsync(ct);
        });
        if (owned.Count > 0 && requestedAt is null)
        {
            return (true, owned, false);
        }
        await cache.InvalidateAllAsync();
        await keys.ShredAsync(subject, ct);
        await markers.AnnounceAsync(subject);
        // Recorded after the shredding: the entry names the pseudonymous subject and keeps no address.
        if (requestedAt is null)
        {
            await audit.RecordAsync(null, "account.erased", subject, ct: ct);
        }
        return (false, requestedAt is null ? [] : owned, await FinishAsync(subject, ct));
    }

    /// <summary>Identity's part of one erasure (idempotent); true once Identity no longer holds the account.</summary>
    public async Task<bool> FinishAsync(string subject, CancellationToken ct)
    {
        var erasure = await db.AccountErasures.SingleAsync(e => e.SubjectId == subject, ct);
        if (erasure.CompletedAt is not null)
        {
            return true;
        }
        erasure.Attempts++;
        try
        {
            // The key first, again: a crash between the Api's commit and the shredding must not leave the key behind.
            await keys.ShredAsync(subject, ct);
            if (Guid.TryParse(subject, out var userId))
            {
                await identity.EraseAccountAsync(userId, ct); // false: already gone, which is the goal
            }
            erasure.CompletedAt = time.GetUtcNow();
            erasure.LastError = null;
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Unreachable, refusing, timed out or circuit open: the Api's part stands and the worker tries again.
            erasure.LastError = e is ServiceClients.ServiceUnavailableException ? e.Message : $"Identity did not answer ({e.GetType().Name}).";
            LogIdentityPending(logger, erasure.Attempts);
        }
        await db.SaveChangesAsync(ct);
        return erasure.CompletedAt is not null;
    }

    [LoggerMessage(LogLevel.Warning, "Privacy: an erasure done again after a restore left {Count} workspace(s) without an owner ({Workspaces}); a platform administrator assigns one")]
    private static partial void LogOrphaned(ILogger logger, int count, string workspaces);

    [LoggerMessage(LogLevel.Warning, "Privacy: an account erasure waits for Identity (attempt {Attempts}); the worker retries it")]
    private static partial void LogIdentityPending(ILogger logger, int attempts);
}
