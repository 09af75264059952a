using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Privacy;

/// <summary>Wakes this replica's privacy worker when work was just requested here (others find it on their next pass).</summary>
public sealed class PrivacySignal : IDisposable
{
    private readonly SemaphoreSlim _signal = new(0, 1);

    public void Notify()
    {
        try
        {
            _signal.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
    }

    public Task WaitAsync(TimeSpan timeout, CancellationToken ct) => _signal.WaitAsync(timeout, ct);

    public void Dispose() => _signal.Dispose();
}

/// <summary>Whether this replica's start-up pass has re-applied every erasure (readiness waits for it).</summary>
public sealed class ErasuresReapplied
{
    private volatile bool _done;

    public bool IsDone => _done;

    public void Done() => _done = true;
}

internal sealed class ErasuresReappliedHealthCheck(ErasuresReapplied state) : Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck
{
    public Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(
        Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(state.IsDone
            ? Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy()
            : Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Unhealthy("Erasures are not re-applied yet (start-up pass)."));
}

/// <summary>Runs export jobs, retries unfinished erasures at Identity and expires old exports.</summary>
public sealed partial class PrivacyWorker(IServiceScopeFactory scopes, ServiceDefaults.Data.MigrationStatus<ApiDbContext> apiSchema,
    ServiceDefaults.Data.MigrationStatus<SubjectKeysDbContext> keySchema, PrivacySignal signal, IOptions<PrivacyOptions> options,
    ErasuresReapplied reappliedState, ILogger<PrivacyWorker> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await apiSchema.WhenCompleted(stoppingToken);
        await keySchema.WhenCompleted(stoppingToken);
        var reapplied = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            if (!reapplied)
            {
                try
                {
                    await ReapplyErasuresAsync(stoppingToken);
                    reapplied = true;
                    reappliedState.Done();
                }
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
                {
                    LogPassFailed(logger, e.GetType().Name);
                }
            }
            try
            {
                await RunOnceAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(logger, e.GetType().Name);
            }
            await signal.WaitAsync(options.Value.WorkerInterval, stoppingToken);
        }
    }

    private async Task RunOnceAsync(CancellationToken ct)
    {
        await using (var scope = scopes.CreateAsyncScope())
        {
            var jobs = scope.ServiceProvider.GetRequiredService<DataExportJobs>();
            await jobs.ExpireAsync(ct);
        }
        // One scope per job: each starts with a clean change tracker.
        while (true)
        {
            await using var scope = scopes.CreateAsyncScope();
            if (!await scope.ServiceProvider.GetRequiredService<DataExportJobs>().RunNextAsync(ct))
            {
                break;
            }
        }
        List<string> unfinished;
        await using (var scope = scopes.CreateAsyncScope())
        {
            unfinished = await scope.ServiceProvider.GetRequiredService<ApiDbContext>().AccountErasures
                .Where(e => e.CompletedAt == null).OrderBy(e => e.RequestedAt).Select(e => e.SubjectId).Take(100).ToListAsync(ct);
        }
        foreach (var subject in unfinished)
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<AccountEraser>().FinishAsync(subject, ct);
        }
    }

    /// <summary>
    /// After a restore, subjectkeysdb may be older than apidb and hold keys of people erased since: every erasure apidb
    /// knows of is shredded again at start-up (idempotent; one query per 500 erasures when nothing is left to do). Or
    /// apidb is older (point-in-time recovery of the main cluster): every tombstone it does not know of is erased again.
    /// </summary>
    private async Task ReapplyErasuresAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        var keyDb = scope.ServiceProvider.GetRequiredService<SubjectKeysDbContext>();
        var keys = scope.ServiceProvider.GetRequiredService<SubjectKeys>();
        var shredded = 0;
        var seen = 0;
        while (true)
        {
            // Erasures are only ever added, so offset paging over a stable order misses none.
            var page = await db.AccountErasures.AsNoTracking().OrderBy(e => e.SubjectId).Skip(seen).Take(500).Select(e => e.SubjectId).ToListAsync(ct);
            if (page.Count == 0)
            {
                break;
            }
            foreach (var subject in await keyDb.SubjectKeys.AsNoTracking().Where(k => page.Contains(k.SubjectId) && k.WrappedKey != null).Select(k => k.SubjectId).ToListAsync(ct))
            {
                await keys.ShredAsync(subject, ct);
                shredded++;
            }
            seen += page.Count;
        }
        if (shredded > 0)
        {
            LogReapplied(logger, shredded);
        }

        // The other way round: apidb restored to a moment before erasures that subjectkeysdb (a cluster of its own, never
        // rolled back with apidb) records as tombstones. Those erasures are done again: memberships, invitations and
        // exports go, and Identity (restored too) deletes the account again.
        var erasedAgain = 0;
        var read = 0;
        while (true)
        {
            // Tombstones are only ever added, so offset paging over a stable order misses none present at start.
            var tombstones = await keyDb.SubjectKeys.AsNoTracking()
                .Where(k => k.WrappedKey == null && k.ShreddedAt != null)
                .OrderBy(k => k.SubjectId).Skip(read).Take(500)
                .Select(k => new { k.SubjectId, ShreddedAt = k.ShreddedAt!.Value }).ToListAsync(ct);
            if (tombstones.Count == 0)
            {
                break;
            }
            var subjects = tombstones.Select(t => t.SubjectId).ToList();
            var known = await db.AccountErasures.AsNoTracking().Where(e => subjects.Contains(e.SubjectId)).Select(e => e.SubjectId).ToListAsync(ct);
            foreach (var tombstone in tombstones.Where(t => !known.Contains(t.SubjectId, StringComparer.Ordinal)))
            {
                await using var eraseScope = scopes.CreateAsyncScope();
                await eraseScope.ServiceProvider.GetRequiredService<AccountEraser>().EraseAgainAsync(tombstone.SubjectId, tombstone.ShreddedAt, ct);
                erasedAgain++;
            }
            read += tombstones.Count;
        }
        if (erasedAgain > 0)
        {
            LogErasedAgain(logger, erasedAgain);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Privacy: {Count} erasures recorded in subjectkeysdb were missing from apidb (restored to an earlier moment?) and are done again")]
    private static partial void LogErasedAgain(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "Privacy: {Count} keys of erased people were present (subjectkeysdb restored from an older backup?) and are shredded again")]
    private static partial void LogReapplied(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "Privacy worker pass failed ({Error}); it runs again after the interval")]
    private static partial void LogPassFailed(ILogger logger, string error);
}
