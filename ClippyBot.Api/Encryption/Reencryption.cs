using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Encryption;

/// <summary>A kind of row holding envelopes, which the rotation job can move to the current data key in batches.</summary>
public interface IReencryptable
{
    /// <summary>Stable name, stored as a run's stage.</summary>
    string Name { get; }

    /// <summary>
    /// Loads up to <paramref name="batchSize"/> rows after <paramref name="after"/> (id order) into the scope's
    /// <see cref="ApiDbContext"/> and re-encrypts those not under <paramref name="target"/>, without saving (the caller saves
    /// them together with its cursor). Returns the last row id seen (null when there are no more) and how many moved.
    /// </summary>
    Task<(Guid? LastId, int Reencrypted, IReadOnlyList<Guid> Unreadable)> ReencryptBatchAsync(Guid target, Guid after, int batchSize, CancellationToken ct);

    /// <summary>Rows per data key, for the status report.</summary>
    Task<Dictionary<Guid, int>> CountByKeyAsync(CancellationToken ct);
}

/// <summary>
/// Moves ciphertexts to the newest data key after a rotation. Each batch — rows and the run's cursor — commits in one
/// transaction, so a crash or a stop loses nothing and the next start (on any replica) resumes after the cursor.
/// </summary>
public sealed partial class ReencryptionService(
    IServiceScopeFactory scopes, IOptions<EncryptionOptions> options, TimeProvider time,
    ILogger<ReencryptionService> logger, ClippyBot.ServiceDefaults.Data.MigrationStatus<ApiDbContext> migrations) : BackgroundService
{
    private readonly SemaphoreSlim _wake = new(0);

    /// <summary>Starts work now instead of at the next poll (after a rotation on this replica).</summary>
    public void Wake() => _wake.Release();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await migrations.WhenCompleted(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            bool more;
            try
            {
                more = await StepAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Never takes the service down: log, wait, try again.
                LogStepFailed(e.GetType().Name);
                more = false;
            }
            if (!more)
            {
                await _wake.WaitAsync(TimeSpan.FromSeconds(5), stoppingToken);
            }
            else if (options.Value.ReencryptionBatchPause > TimeSpan.Zero)
            {
                await Task.Delay(options.Value.ReencryptionBatchPause, time, stoppingToken);
            }
        }
    }

    /// <summary>One batch of the oldest unfinished run; false when there is nothing to do (or another replica is at it).</summary>
    public async Task<bool> StepAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        return await db.Database.CreateExecutionStrategy().ExecuteAsync(async () =>
        {
            db.ChangeTracker.Clear();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            // One replica at a time: the batch, the cursor and this lock live and die with the transaction.
            if (!await db.Database.SqlQuery<bool>($"SELECT pg_try_advisory_xact_lock(hashtextextended('clippybot-reencryption', 0)) AS \"Value\"").SingleAsync(ct))
            {
                return false;
            }
            var more = await StepLockedAsync(scope.ServiceProvider, db, ct);
            await tx.CommitAsync(ct);
            return more;
        });
    }

    private async Task<bool> StepLockedAsync(IServiceProvider services, ApiDbContext db, CancellationToken ct)
    {
        IReencryptable[] sources = [.. services.GetServices<IReencryptable>().OrderBy(s => s.Name, StringComparer.Ordinal)];
        var run = await db.ReencryptionRuns.Where(r => r.CompletedAt == null).OrderBy(r => r.StartedAt).FirstOrDefaultAsync(ct);
        if (run is null)
        {
            return false;
        }
        var stage = Array.FindIndex(sources, s => s.Name == run.Stage);
        if (stage < 0)
        {
            stage = 0;
            run.Stage = sources[0].Name;
            run.Cursor = Guid.Empty;
        }
        var (last, count, unreadable) = await sources[stage].ReencryptBatchAsync(run.TargetKeyId, run.Cursor, options.Value.ReencryptionBatchSize, ct);
        run.Processed += count;
        run.Unreadable += unreadable.Count;
        foreach (var rowId in unreadable)
        {
            LogUnreadable(run.Stage, rowId);
        }
        if (last is { } id)
        {
            run.Cursor = id;
        }
        else if (stage + 1 < sources.Length)
        {
            run.Stage = sources[stage + 1].Name;
            run.Cursor = Guid.Empty;
        }
        else if (run.Passes < 3 && await RowsNotOnAsync(sources, run.TargetKeyId, ct) > run.Unreadable)
        {
            // Written under an old key by a replica that had not switched yet: one more pass.
            run.Stage = sources[0].Name;
            run.Cursor = Guid.Empty;
            run.Unreadable = 0;
            run.Passes++;
        }
        else
        {
            run.CompletedAt = time.GetUtcNow();
            LogCompleted(run.Id, run.TargetKeyId, run.Processed);
        }
        // Rows and cursor in one transaction.
        await db.SaveChangesAsync(ct);
        if (count > 0)
        {
            LogProgress(run.Id, run.Stage, run.Processed);
        }
        return true;
    }

    private static async Task<int> RowsNotOnAsync(IReencryptable[] sources, Guid target, CancellationToken ct)
    {
        var total = 0;
        foreach (var source in sources)
        {
            total += (await source.CountByKeyAsync(ct)).Where(k => k.Key != target).Sum(k => k.Value);
        }
        return total;
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }

    [LoggerMessage(LogLevel.Information, "Re-encryption run {RunId}: {Processed} rows moved so far (stage {Stage})")]
    private partial void LogProgress(Guid runId, string stage, long processed);

    [LoggerMessage(LogLevel.Information, "Re-encryption run {RunId} to data key {KeyId} completed: {Processed} rows moved")]
    private partial void LogCompleted(Guid runId, Guid keyId, long processed);

    [LoggerMessage(LogLevel.Error, "Re-encryption: {Stage} row {RowId} does not decrypt (corrupted or tampered); left as it is")]
    private partial void LogUnreadable(string stage, Guid rowId);

    [LoggerMessage(LogLevel.Warning, "Re-encryption step failed ({Error}); retrying shortly")]
    private partial void LogStepFailed(string error);
}
