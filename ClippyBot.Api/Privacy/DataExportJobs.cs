using ClippyBot.Security;
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
            var token = RandomTokens.New();
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

    public static byte[] TokenHash(string token) => RandomTokens.LookupHash(token);

    [LoggerMessage(LogLevel.Information, "Privacy: export {ExportId} ready ({Bytes} bytes)")]
    private static partial void LogExportReady(ILogger logger, Guid exportId, int bytes);

    [LoggerMessage(LogLevel.Warning, "Privacy: export {ExportId} failed ({Error}), attempt {Attempts}")]
    private static partial void LogExportFailed(ILogger logger, string error, Guid exportId, int attempts);
}
