using ClippyBot.Contracts;
using System.Globalization;
using ClippyBot.Backup;
using ClippyBot.Backup.PointInTime;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>The dashboard's view of the local cluster's backups: what was taken last, the last drill, the archive's lag.</summary>
public sealed class BackupScheduleResource(string name) : Resource(name);

/// <summary>How far back one cluster's recovery reaches and how often it is backed up and drilled.</summary>
public sealed record BackupCadence(TimeSpan RecoveryWindow, TimeSpan FullBackupInterval, TimeSpan DifferentialBackupInterval, TimeSpan RestoreDrillInterval)
{
    public static BackupCadence From(LocalInfrastructureOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new(options.RecoveryWindow, options.FullBackupInterval, options.DifferentialBackupInterval, options.RestoreDrillInterval);
    }
}

/// <summary>
/// Backups on a schedule (docs/backup.md): pgBackRest's stanza at start, a full backup into every repository at first start
/// and then every <see cref="LocalInfrastructureOptions.FullBackupInterval"/>, differentials in between, and a restore drill
/// every <see cref="LocalInfrastructureOptions.RestoreDrillInterval"/> (repositories in turn). A failure is an error in the
/// resource's log and a red state on the dashboard; the next check tries again.
/// </summary>
public static class BackupScheduleExtensions
{
    public const string ResourceName = "backups";

    /// <summary>The schedule of the cluster that keeps people's keys (<c>subjectkeysdb</c>, docs/privacy.md).</summary>
    public const string KeysResourceName = "backups-subjectkeys";

    public static IResourceBuilder<BackupScheduleResource> AddBackupSchedule(
        this IDistributedApplicationBuilder builder, string name, IResourceBuilder<LocalPostgresServerResource> postgres, BackupCadence options, string? notArchiving)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(postgres);
        var resource = new BackupScheduleResource(name);
        var pgBackRest = postgres.Resource.Backups;
        var schedule = builder.AddResource(resource)
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = "Backups",
                // Never silent: without pgBackRest the dashboard says that nothing is archived, and why.
                State = notArchiving is null ? new("Waiting for postgres", KnownResourceStateStyles.Info) : new(notArchiving, KnownResourceStateStyles.Warn),
                Properties = [new("backups.repositories", pgBackRest?.Repositories.ToString(CultureInfo.InvariantCulture) ?? "0")],
            })
            .ExcludeFromManifest();
        if (pgBackRest is null)
        {
            return schedule;
        }
        builder.Services.TryAddSingleton<BackupMetrics>();
        builder.Services.AddKeyedSingleton(name, (sp, _) => new BackupScheduler(resource, postgres.Resource, pgBackRest, options,
            sp.GetRequiredService<ResourceNotificationService>(), sp.GetRequiredService<ResourceLoggerService>().GetLogger(resource),
            sp.GetRequiredService<BackupMetrics>(), TimeProvider.System, sp.GetService<BackupSignals>()));
        builder.Services.AddSingleton<IHostedService>(sp => sp.GetRequiredKeyedService<BackupScheduler>(name));
        schedule.WithCommand("backup-full", "Full backup now", async context =>
            {
                var scheduler = context.Services.GetRequiredKeyedService<BackupScheduler>(name);
                return await scheduler.BackUpAllAsync("full", context.CancellationToken) is { } failure ? CommandResults.Failure(failure) : CommandResults.Success();
            },
            new CommandOptions { ConfirmationMessage = "Take a full backup of the local cluster into every repository now?", IconName = "Save" });
        schedule.WithCommand("restore-drill", "Run a restore drill", async context =>
            {
                var scheduler = context.Services.GetRequiredKeyedService<BackupScheduler>(name);
                return await scheduler.DrillAsync(context.CancellationToken) is { } failure ? CommandResults.Failure(failure) : CommandResults.Success();
            },
            new CommandOptions { ConfirmationMessage = "Restore the newest backup and WAL into a scratch cluster and check it?", IconName = "ArrowReset" });
        return schedule;
    }
}

internal sealed partial class BackupScheduler(
    BackupScheduleResource resource, LocalPostgresServerResource postgres, PgBackRest pgBackRest, BackupCadence options,
    ResourceNotificationService notifications, ILogger logger, BackupMetrics metrics, TimeProvider time, BackupSignals? signals = null) : BackgroundService
{
    private readonly SemaphoreSlim _busy = new(1, 1);
    private string _lastBackup = "none yet";

    /// <summary>The last drill's time, repository and line, kept across restarts (a failed drill must not vanish from view).</summary>
    private string DrillStamp => Path.Combine(Path.GetDirectoryName(pgBackRest.ConfigFile)!, "last-drill");

    private DateTimeOffset _lastExpire = DateTimeOffset.MinValue;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            await notifications.WaitForResourceHealthyAsync(postgres.Name, stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        var (drilled, _, drillLine) = LastDrill();
        metrics.DrillRecorded(postgres.Name, drilled, drillLine.Contains("FAILED", StringComparison.Ordinal));
        var watching = WatchArchiveAsync(stoppingToken);
        // Between checks: often enough that no due backup waits long, rarely enough to cost nothing.
        var period = TimeSpan.FromTicks(Math.Min(options.DifferentialBackupInterval.Ticks, TimeSpan.FromHours(1).Ticks) / 2);
        var stanzaReady = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!stanzaReady)
                {
                    await PublishAsync("Checking archiving", KnownResourceStateStyles.Info);
                    await pgBackRest.EnsureStanzaAsync(stoppingToken);
                    stanzaReady = true;
                    LogArchiving(logger, pgBackRest.Repositories);
                }
                await RunDueBackupsAsync(stoppingToken);
                // pgBackRest expires old backups only at the end of a backup: on its own, a backup that fails (or an
                // AppHost that was down) would keep them past the window — people's keys past their 30 days.
                if (time.GetUtcNow() - _lastExpire >= TimeSpan.FromHours(1))
                {
                    await pgBackRest.ExpireAsync(stoppingToken);
                    _lastExpire = time.GetUtcNow();
                }
                if (DrillDue())
                {
                    await DrillAsync(stoppingToken);
                }
                await PublishAsync(null, null);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
#pragma warning disable CA1031 // a background service that throws stops the whole AppHost; every failure is reported and retried
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogFailed(logger, e.Message);
                await PublishAsync("Failed: " + e.Message, KnownResourceStateStyles.Error);
            }
            try
            {
                await Task.Delay(period, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
        await watching;
    }

    /// <summary>The archive's lag for the metrics, every 15 s (a stalled archive must show long before the next backup).</summary>
    private async Task WatchArchiveAsync(CancellationToken ct)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(15), time);
        do
        {
            await ArchiveStatusAsync(ct);
        }
        while (await WaitAsync(timer, ct));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>A full or differential backup into each repository whose newest one is older than its interval.</summary>
    private async Task RunDueBackupsAsync(CancellationToken ct)
    {
        var backups = await pgBackRest.InfoAsync(ct);
        metrics.BackupsListed(postgres.Name, backups);
        var now = time.GetUtcNow();
        for (var repository = 1; repository <= pgBackRest.Repositories; repository++)
        {
            var inRepository = backups.Where(b => b.Repository == repository).ToList();
            var lastFull = inRepository.Where(b => b.Type == "full").Select(b => (DateTimeOffset?)b.Stopped).Max();
            var lastAny = inRepository.Select(b => (DateTimeOffset?)b.Stopped).Max();
            var type = lastFull is null || now - lastFull >= options.FullBackupInterval ? "full"
                : now - lastAny >= options.DifferentialBackupInterval ? "diff"
                : null;
            if (type is not null)
            {
                await BackUpAsync(type, repository, ct);
            }
        }
    }

    /// <summary>The dashboard command: a backup of <paramref name="type"/> into every repository; the failure's text, or null.</summary>
    public async Task<string?> BackUpAllAsync(string type, CancellationToken ct)
    {
        try
        {
            for (var repository = 1; repository <= pgBackRest.Repositories; repository++)
            {
                await BackUpAsync(type, repository, ct);
            }
            await PublishAsync(null, null);
            return null;
        }
        catch (BackupException e)
        {
            LogFailed(logger, e.Message);
            await PublishAsync("Failed: " + e.Message, KnownResourceStateStyles.Error);
            return e.Message;
        }
    }

    private async Task BackUpAsync(string type, int repository, CancellationToken ct)
    {
        await _busy.WaitAsync(ct);
        try
        {
            await PublishAsync($"Taking a {type} backup into repository {repository}", KnownResourceStateStyles.Info);
            var started = time.GetTimestamp();
            BackupSet newest;
            try
            {
                await pgBackRest.BackupAsync(type, repository, ct);
                newest = (await pgBackRest.InfoAsync(ct)).LastOrDefault(b => b.Repository == repository)
                    ?? throw new BackupException($"pgBackRest reported success, but repository {repository} lists no backup.");
            }
            catch (BackupException)
            {
                metrics.BackupFailed(postgres.Name, type, repository, time.GetElapsedTime(started));
                signals?.Raise(SecuritySignalNames.BackupFailed, postgres.Name, $"{type} backup into repository {repository} failed");
                throw;
            }
            metrics.BackupSucceeded(postgres.Name, type, repository, newest.Stopped, newest.Bytes, time.GetElapsedTime(started));
            _lastBackup = string.Create(CultureInfo.InvariantCulture,
                $"{newest.Type} {newest.Label} into repository {repository} at {newest.Stopped:u} ({time.GetElapsedTime(started).TotalSeconds:0.0} s, {newest.Bytes / 1024} KiB)");
            LogBackedUp(logger, _lastBackup);
        }
        finally
        {
            _busy.Release();
        }
    }

    /// <summary>Time of the last passed drill, the repository it used, and its line (or the failure), from <see cref="DrillStamp"/>.</summary>
    private (DateTimeOffset? Passed, int Repository, string Line) LastDrill()
    {
        string[] lines;
        try
        {
            lines = File.Exists(DrillStamp) ? ClippyBot.Security.OwnerOnlyFile.ReadAllLines(DrillStamp) : [];
        }
        catch (IOException)
        {
            lines = [];
        }
        var passed = lines.Length > 0 && DateTimeOffset.TryParse(lines[0], CultureInfo.InvariantCulture, DateTimeStyles.None, out var at) ? at : (DateTimeOffset?)null;
        var repository = lines.Length > 1 && int.TryParse(lines[1], NumberStyles.None, CultureInfo.InvariantCulture, out var r) ? r : 0;
        return (passed, repository, lines.Length > 2 ? lines[2] : "none yet");
    }

    private void RecordDrill(DateTimeOffset? passed, int repository, string line) =>
        ClippyBot.Security.OwnerOnlyFile.Write(DrillStamp, string.Create(CultureInfo.InvariantCulture, $"{passed:O}\n{repository}\n{line}\n"));

    private bool DrillDue()
    {
        var (passed, repository, line) = LastDrill();
        if (passed is null && repository == 0)
        {
            // The first drill comes one interval after the first start: a brand-new cluster has little to prove yet.
            RecordDrill(time.GetUtcNow(), 0, line);
            return false;
        }
        // After a failed drill no pass is recorded, so it is due again at every check (an error each time) until one passes.
        return passed is null || time.GetUtcNow() - passed >= options.RestoreDrillInterval;
    }

    /// <summary>A restore drill from the repository after the last one drilled; the failure's text, or null.</summary>
    public async Task<string?> DrillAsync(CancellationToken ct)
    {
        var (_, lastRepository, _) = LastDrill();
        var repository = lastRepository % pgBackRest.Repositories + 1;
        await _busy.WaitAsync(ct);
        try
        {
            await PublishAsync($"Restore drill from repository {repository}", KnownResourceStateStyles.Info);
            var result = await Recovery.DrillAsync(pgBackRest, repository, [.. postgres.Databases.Select(d => d.DatabaseName)], time, ct);
            RecordDrill(time.GetUtcNow(), repository, $"{time.GetUtcNow():u}: {result}");
            metrics.DrillPassed(postgres.Name, time.GetUtcNow(), result.RecoveryTime, result.NewestCommitAge);
            LogDrill(logger, result.ToString());
            return null;
        }
#pragma warning disable CA1031 // any failure of a drill is the finding it exists to make
        catch (Exception e) when (e is not OperationCanceledException)
#pragma warning restore CA1031
        {
            RecordDrill(null, repository, $"{time.GetUtcNow():u}: FAILED: {e.Message.ReplaceLineEndings(" ")}");
            metrics.DrillFailed(postgres.Name, repository);
            signals?.Raise(SecuritySignalNames.RestoreDrillFailed, postgres.Name, $"repository {repository}: {e.Message}");
            // An error an operator alerts on: the backups could not be restored.
            LogDrillFailed(logger, repository, e.Message);
            return e.Message;
        }
        finally
        {
            _busy.Release();
            await PublishAsync(null, null);
        }
    }

    /// <summary>
    /// The archive's lag: how long the oldest finished WAL segment has waited for pgBackRest (its <c>.ready</c> file's
    /// age; 0 when none waits — an idle server writes no segments, and that is no lag), and the failed attempts
    /// (pg_stat_archiver).
    /// </summary>
    private async Task<string> ArchiveStatusAsync(CancellationToken ct)
    {
        try
        {
            var builder = new NpgsqlConnectionStringBuilder(await postgres.ConnectionStringExpression.GetValueAsync(ct)) { Pooling = false, Timeout = 3 };
            await using var connection = new NpgsqlConnection(builder.ConnectionString);
            await connection.OpenAsync(ct);
            await using var command = new NpgsqlCommand("""
                SELECT COALESCE((SELECT extract(epoch FROM now() - min(modification))::float8 FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'), 0),
                       (SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'),
                       failed_count
                FROM pg_stat_archiver
                """, connection);
            await using var reader = await command.ExecuteReaderAsync(ct);
            await reader.ReadAsync(ct);
            var lag = Math.Max(0, reader.GetDouble(0));
            var waiting = reader.GetInt64(1);
            var failed = reader.GetInt64(2);
            metrics.ArchiveObserved(postgres.Name, lag, failed);
            if (lag > BackupSignals.LagAlarm.TotalSeconds)
            {
                signals?.Raise(SecuritySignalNames.ArchiveLagging, postgres.Name, string.Create(CultureInfo.InvariantCulture, $"the oldest waiting WAL segment is {lag:0} s old"));
            }
            return string.Create(CultureInfo.InvariantCulture, $"{waiting} segment(s) waiting, the oldest for {Math.Round(lag)} s; {failed} failed attempts");
        }
        catch (NpgsqlException e)
        {
            return "unknown: " + e.Message;
        }
        catch (OperationCanceledException)
        {
            return "unknown";
        }
    }

    private async Task PublishAsync(string? activity, string? style)
    {
        var lastDrill = LastDrill().Line;
        var failedDrill = lastDrill.Contains("FAILED", StringComparison.Ordinal);
        var archive = await ArchiveStatusAsync(CancellationToken.None);
        var state = activity is not null ? new ResourceStateSnapshot(activity, style)
            : failedDrill ? new ResourceStateSnapshot("Restore drill failed", KnownResourceStateStyles.Error)
            : new ResourceStateSnapshot("Archiving", KnownResourceStateStyles.Success);
        await notifications.PublishUpdateAsync(resource, s => s with
        {
            State = state,
            Properties =
            [
                new("backups.repositories", pgBackRest.Repositories.ToString(CultureInfo.InvariantCulture)),
                new("backups.last", _lastBackup),
                new("backups.last-drill", lastDrill),
                new("backups.archive", archive),
                new("backups.recovery-window", options.RecoveryWindow.ToString()),
                new("backups.config", pgBackRest.ConfigFile),
            ],
        });
    }

    public override void Dispose()
    {
        _busy.Dispose();
        base.Dispose();
    }

    [LoggerMessage(LogLevel.Information, "Archiving WAL continuously into {Repositories} encrypted repositories")]
    private static partial void LogArchiving(ILogger logger, int repositories);

    [LoggerMessage(LogLevel.Information, "Backup: {Backup}")]
    private static partial void LogBackedUp(ILogger logger, string backup);

    [LoggerMessage(LogLevel.Information, "Restore drill: {Result}")]
    private static partial void LogDrill(ILogger logger, string result);

    [LoggerMessage(LogLevel.Error, "Restore drill from repository {Repository} FAILED: {Reason}")]
    private static partial void LogDrillFailed(ILogger logger, int repository, string reason);

    [LoggerMessage(LogLevel.Error, "Backups: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
