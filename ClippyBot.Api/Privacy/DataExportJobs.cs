using System.Security.Cryptography;
using System.Text;
using ClippyBot.Api.Data;
using ClippyBot.Api.Encryption;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Privacy;

/// <summary>
/// The export jobs: requested by a person, run by whichever replica's worker claims them first (a conditional update, so
/// two replicas never run one job), retried after a failure, expired after <see cref="PrivacyOptions.ExportLifetime"/>.
/// </summary>
public sealed partial class DataExportJobs(ApiDbContext db, PersonalDataExporter exporter, EnvelopeEncryptor encryptor, ExportMail mail,
    PrivacySignal signal, IOptions<PrivacyOptions> options, TimeProvider time, ILogger<DataExportJobs> logger)
{
    /// <summary>Finished jobs' rows (no document left) are kept this long for their owner's history.</summary>
    public static readonly TimeSpan HistoryRetention = TimeSpan.FromDays(30);

    public static EnvelopeContext PayloadContext(Guid exportId) => new("DataExports", "Payload", exportId, Guid.Empty);

    /// <summary>A new job; null when one of the person's exports is still being made.</summary>
    public async Task<DataExport?> RequestAsync(string subject, CancellationToken ct)
    {
        if (await db.DataExports.AnyAsync(e => e.SubjectId == subject && (e.Status == DataExportStatus.Pending || e.Status == DataExportStatus.Running), ct))
        {
            return null;
        }
        var export = new DataExport { Id = Guid.CreateVersion7(), SubjectId = subject, Status = DataExportStatus.Pending, RequestedAt = time.GetUtcNow() };
        db.DataExports.Add(export);
        await db.SaveChangesAsync(ct);
        signal.Notify();
        return export;
    }

    /// <summary>Claims and runs the oldest runnable job; false when there is none.</summary>
    public async Task<bool> RunNextAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var settings = options.Value;
        var abandoned = now - settings.ClaimTimeout;
        // A failed attempt waits one worker interval before the next.
        var retryAfter = now - settings.WorkerInterval;
        var candidates = await db.DataExports.AsNoTracking()
            .Where(e => (e.Status == DataExportStatus.Pending && (e.StartedAt == null || e.StartedAt < retryAfter))
                        || (e.Status == DataExportStatus.Running && e.StartedAt < abandoned))
            .OrderBy(e => e.RequestedAt).Select(e => e.Id).Take(5).ToListAsync(ct);
        foreach (var id in candidates)
        {
            var claimed = await db.DataExports
                .Where(e => e.Id == id && ((e.Status == DataExportStatus.Pending && (e.StartedAt == null || e.StartedAt < retryAfter))
                                           || (e.Status == DataExportStatus.Running && e.StartedAt < abandoned)))
                .ExecuteUpdateAsync(s => s.SetProperty(e => e.Status, DataExportStatus.Running).SetProperty(e => e.StartedAt, now)
                    .SetProperty(e => e.Attempts, e => e.Attempts + 1), ct);
            if (claimed == 1)
            {
                await RunAsync(id, ct);
                return true;
            }
        }
        return false;
    }

    private async Task RunAsync(Guid id, CancellationToken ct)
    {
        var export = await db.DataExports.SingleAsync(e => e.Id == id, ct);
        try
        {
            var (document, verifiedEmail) = await exporter.BuildAsync(export.Id, export.SubjectId, ct);
            var token = Base64Url(RandomNumberGenerator.GetBytes(32));
            export.Payload = await encryptor.EncryptAsync(document, PayloadContext(export.Id), ct);
            export.DownloadTokenHash = TokenHash(token);
            export.CompletedAt = time.GetUtcNow();
            export.ExpiresAt = export.CompletedAt + options.Value.ExportLifetime;
            export.Status = DataExportStatus.Ready;
            export.Error = null;
            await db.SaveChangesAsync(ct);
            if (verifiedEmail is not null)
            {
                mail.Send(verifiedEmail, export.Id, token, export.ExpiresAt.Value);
            }
            LogExportReady(logger, export.Id, document.Length);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            var last = export.Attempts >= options.Value.MaxExportAttempts;
            export.Status = last ? DataExportStatus.Failed : DataExportStatus.Pending;
            export.Error = last ? "The export could not be made; ask for a new one, or contact support if it fails again." : null;
            await db.SaveChangesAsync(CancellationToken.None);
            LogExportFailed(logger, e.GetType().Name, export.Id, export.Attempts);
        }
    }

    /// <summary>Deletes the documents of expired exports, and the rows of exports finished long ago.</summary>
    public async Task ExpireAsync(CancellationToken ct)
    {
        var now = time.GetUtcNow();
        await db.DataExports.Where(e => e.Status == DataExportStatus.Ready && e.ExpiresAt <= now)
            .ExecuteUpdateAsync(s => s.SetProperty(e => e.Status, DataExportStatus.Expired)
                .SetProperty(e => e.Payload, (byte[]?)null).SetProperty(e => e.DownloadTokenHash, (byte[]?)null), ct);
        var old = now - HistoryRetention;
        await db.DataExports.Where(e => (e.Status == DataExportStatus.Expired || e.Status == DataExportStatus.Failed) && e.RequestedAt < old)
            .ExecuteDeleteAsync(ct);
    }

    /// <summary>The document, if <paramref name="export"/> is ready and not past its expiry.</summary>
    public async Task<byte[]?> OpenAsync(DataExport export, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(export);
        if (export.Status != DataExportStatus.Ready || export.Payload is null || export.ExpiresAt <= time.GetUtcNow())
        {
            return null;
        }
        return await encryptor.DecryptAsync(export.Payload, PayloadContext(export.Id), ct);
    }

    /// <summary>The export a download link names, when its token matches (compared in constant time).</summary>
    public async Task<DataExport?> FindByLinkAsync(Guid exportId, string token, CancellationToken ct)
    {
        var export = await db.DataExports.AsNoTracking().SingleOrDefaultAsync(e => e.Id == exportId, ct);
        var presented = TokenHash(token);
        var stored = export?.DownloadTokenHash ?? new byte[presented.Length];
        return CryptographicOperations.FixedTimeEquals(presented, stored) && export?.DownloadTokenHash is not null ? export : null;
    }

    public static byte[] TokenHash(string token) => SHA256.HashData(Encoding.UTF8.GetBytes(token));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [LoggerMessage(LogLevel.Information, "Privacy: export {ExportId} ready ({Bytes} bytes)")]
    private static partial void LogExportReady(ILogger logger, Guid exportId, int bytes);

    [LoggerMessage(LogLevel.Warning, "Privacy: export {ExportId} failed ({Error}), attempt {Attempts}")]
    private static partial void LogExportFailed(ILogger logger, string error, Guid exportId, int attempts);
}

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

/// <summary>Runs export jobs, retries unfinished erasures at Identity and expires old exports.</summary>
public sealed partial class PrivacyWorker(IServiceScopeFactory scopes, ServiceDefaults.Data.MigrationStatus<ApiDbContext> apiSchema,
    ServiceDefaults.Data.MigrationStatus<SubjectKeysDbContext> keySchema, PrivacySignal signal, IOptions<PrivacyOptions> options,
    ILogger<PrivacyWorker> logger) : BackgroundService
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
    /// knows of is shredded again at start-up (idempotent; one query per 500 erasures when nothing is left to do).
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
    }

    [LoggerMessage(LogLevel.Warning, "Privacy: {Count} keys of erased people were present (subjectkeysdb restored from an older backup?) and are shredded again")]
    private static partial void LogReapplied(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "Privacy worker pass failed ({Error}); it runs again after the interval")]
    private static partial void LogPassFailed(ILogger logger, string error);
}
