using ClippyBot.Plugins.Bundles;
using ClippyBot.PluginHost.Data;
using ClippyBot.PluginHost.Plugins;
using ClippyBot.Tuf;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.PluginHost.Registry;

/// <summary>
/// Every <see cref="RegistryTrustOptions.RefreshInterval"/>: the TUF update from the pinned root; then the newest listed
/// version of each plugin is downloaded (never more than its listed length), checked against targets and installed, and
/// every installed version the registry no longer lists is quarantined platform-wide (a yank) — released again should it
/// come back. Expired or unverifiable metadata freezes installs; what is installed keeps running.
/// </summary>
public sealed partial class RegistrySync(IServiceScopeFactory scopes, RegistryTrust trust, IHttpClientFactory http, IOptions<RegistryTrustOptions> options,
    TimeProvider time, ILogger<RegistrySync> logger) : BackgroundService
{
    public const string HttpClientName = "registry";
    public const string QuarantinedBy = "registry";
    public const string WithdrawnReason = "withdrawn from the community registry (no longer in its signed targets)";

    private byte[] PinnedRoot => Convert.FromBase64String(options.Value.Root);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using (var scope = scopes.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<ClippyBot.ServiceDefaults.Data.MigrationStatus<PluginsDbContext>>().WhenCompleted(stoppingToken);
            // What was trusted before a restart runs at once, before the registry answers (or while it cannot).
            trust.Freeze(await Updater(scope.ServiceProvider).LoadStoredAsync(stoppingToken), "not refreshed since start");
        }
        while (!stoppingToken.IsCancellationRequested)
        {
            _lastSync = time.GetUtcNow();
            // A tick never outlasts a bound: a registry that trickles a body cannot hold the next refresh (and yanks) back.
            using (var tick = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken))
            {
                tick.CancelAfter(TickTimeout);
                try
                {
                    await SyncOnceAsync(tick.Token);
                }
#pragma warning disable CA1031 // Whatever the registry (or someone in the way) sends, the host keeps running what it trusts.
                catch (Exception e) when (!stoppingToken.IsCancellationRequested)
#pragma warning restore CA1031
                {
                    trust.Freeze(null, $"refresh failed: {e.GetType().Name}");
                    LogUnreachable(logger, e.GetType().Name, e.Message);
                }
            }
            try
            {
                await NextRefreshAsync(stoppingToken);
            }
#pragma warning disable CA1031 // Waiting for the next refresh must never end the loop (and with it the host).
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
#pragma warning restore CA1031
            {
                LogUnreachable(logger, e.GetType().Name, e.Message);
                await Task.Delay(options.Value.RefreshInterval, time, stoppingToken);
            }
        }
    }

    /// <summary>
    /// Until the next refresh is due — or, sooner, until the registry announces newer metadata (its <c>/tuf/changes</c>
    /// long poll): approvals and yanks arrive at once, the interval is only the fallback. The announcement is only a
    /// wake-up; what is trusted still comes from the TUF update.
    /// </summary>
    private async Task NextRefreshAsync(CancellationToken stoppingToken)
    {
        // An announcement whose refresh did not move the timestamp (the update failing, or a forged "changed") is not
        // listened to again until the interval: announcements can never make refreshes more frequent than that.
        var held = trust.Set?.Timestamp.Version;
        var listen = _announcedFrom is null || held > _announcedFrom;
        _announcedFrom = null;
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        var due = Task.Delay(options.Value.RefreshInterval, time, wait.Token);
        var announced = listen ? AnnouncedAsync(wait.Token) : Task.FromResult(false);
        try
        {
            if (await Task.WhenAny(due, announced) == announced)
            {
                // Nothing new (or no answer): the interval as before. Something new: a short pause first, so announcements
                // (forged by someone in the way, or while the update keeps failing) can never spin the refresh.
                var sinceLast = time.GetUtcNow() - _lastSync;
                if (await announced)
                {
                    _announcedFrom = held ?? 0;
                }
                await (_announcedFrom is not null ? (sinceLast < MinimumSpacing ? Task.Delay(MinimumSpacing - sinceLast, time, wait.Token) : Task.CompletedTask) : due);
            }
        }
        catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            await wait.CancelAsync();
        }
        stoppingToken.ThrowIfCancellationRequested();
    }

    /// <summary>True when the registry says a newer timestamp exists; false when it had nothing new, or could not say.</summary>
    private async Task<bool> AnnouncedAsync(CancellationToken ct)
    {
        if (trust.Set?.Timestamp.Version is not { } held)
        {
            return false;
        }
        try
        {
            using var response = await http.CreateClient(HttpClientName).GetAsync(new Uri($"tuf/changes?after={held}", UriKind.Relative), ct);
            return response.StatusCode == System.Net.HttpStatusCode.OK;
        }
#pragma warning disable CA1031 // Whatever the announcement's call throws (an open circuit, a rejected attempt, discovery), the interval applies.
        catch (Exception) when (!ct.IsCancellationRequested)
#pragma warning restore CA1031
        {
            return false;
        }
    }

    private static readonly TimeSpan TickTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan MinimumSpacing = TimeSpan.FromMilliseconds(200);
    private const long WithdrawalLock = 0x636c_6970_7079_7764;
    private DateTimeOffset _lastSync;
    /// <summary>The timestamp version held when an announcement woke the loop; null when the interval did.</summary>
    private long? _announcedFrom;

    /// <summary>One refresh and the installs and withdrawals it calls for.</summary>
    public async Task SyncOnceAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var updater = Updater(scope.ServiceProvider);
        TufTrustedSet set;
        try
        {
            set = await updater.RefreshAsync(ct);
        }
        catch (TufException e)
        {
            trust.Freeze(await updater.LoadStoredAsync(ct), $"{e.Failure}: {e.Message}");
            LogRefused(logger, e.Failure.ToString(), e.Message);
            return;
        }
        trust.Trust(set, time.GetUtcNow());
        await ApplyAsync(scope.ServiceProvider, set, ct);
    }

    private TufUpdater Updater(IServiceProvider services)
    {
        var client = http.CreateClient(HttpClientName);
        return new TufUpdater(new HttpTufRemote(client, new Uri(client.BaseAddress!, "tuf/")), new DatabaseTrustStore(services.GetRequiredService<PluginsDbContext>(), time), PinnedRoot, time,
            previous: trust.Frozen ? null : trust.Set);
    }

    private async Task ApplyAsync(IServiceProvider services, TufTrustedSet set, CancellationToken ct)
    {
        var db = services.GetRequiredService<PluginsDbContext>();
        var listed = set.Targets.Targets
            .Select(t => (Name: t.Key, Info: t.Value, Plugin: RegistryTrust.Text(t.Value, "plugin"), Version: RegistryTrust.Text(t.Value, "version")))
            .Where(t => t.Plugin is not null && t.Version is not null && SemVersion.TryParse(t.Version, out _))
            .ToList();
        var installed = await db.InstalledPlugins.AsNoTracking().Select(p => new { p.PluginId, p.Version, p.Current }).ToListAsync(ct);

        // Withdrawals first: no failing or slow install may hold a yank back.
        var listedVersions = listed.Select(t => (t.Plugin!, t.Version!)).ToHashSet();
        var invoker = services.GetRequiredService<PluginInvoker>();
        var openByRegistry = await db.Quarantines.AsNoTracking().Where(q => q.SetBy == QuarantinedBy && q.ReleasedAt == null && q.WorkspaceId == null)
            .Select(q => new { q.PluginId, q.Version }).ToListAsync(ct);
        var withdrawals = installed.Where(p => !listedVersions.Contains((p.PluginId, p.Version)))
            .Where(p => !openByRegistry.Any(q => q.PluginId == p.PluginId && q.Version == p.Version)).ToList();
        if (withdrawals.Count > 0)
        {
            // Replicas woken by the same announcement apply a withdrawal one after another, and so once: each looks again
            // under the lock.
            var added = new List<QuarantineEntry>();
            await db.Database.CreateExecutionStrategy().ExecuteAsync(async () =>
            {
                // A retried attempt starts clean: the failed one's rows are not saved twice.
                db.ChangeTracker.Clear();
                added.Clear();
                await using var tx = await db.Database.BeginTransactionAsync(ct);
                await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({WithdrawalLock})", ct);
                var open = await db.Quarantines.AsNoTracking().Where(q => q.SetBy == QuarantinedBy && q.ReleasedAt == null && q.WorkspaceId == null)
                    .Select(q => new { q.PluginId, q.Version }).ToListAsync(ct);
                foreach (var withdrawn in withdrawals.Where(p => !open.Any(q => q.PluginId == p.PluginId && q.Version == p.Version)))
                {
                    var why = set.Targets.Withdrawn?.GetValueOrDefault(RegistryTrust.TargetName(withdrawn.PluginId, withdrawn.Version));
                    var reason = why is null ? WithdrawnReason : $"{WithdrawnReason}: {why}";
                    added.Add(new QuarantineEntry
                    {
                        Id = Guid.CreateVersion7(), PluginId = withdrawn.PluginId, Version = withdrawn.Version, WorkspaceId = null,
                        Reason = reason.Length > 500 ? reason[..500] : reason, SetBy = QuarantinedBy, At = time.GetUtcNow(),
                    });
                }
                db.Quarantines.AddRange(added);
                await db.SaveChangesAsync(ct);
                await tx.CommitAsync(ct);
            });
            if (added.Count > 0)
            {
                // Only now committed: this replica re-reads, the others are told (before, they were told before the commit).
                await services.GetRequiredService<PluginState>().ChangedAsync(ct);
                foreach (var entry in added)
                {
                    LogWithdrawn(logger, entry.PluginId, entry.Version, entry.Reason);
                }
            }
        }
        var relisted = openByRegistry.Where(q => listedVersions.Contains((q.PluginId, q.Version))).ToList();
        if (relisted.Count > 0)
        {
            // Only what the registry itself set, for exactly that version, platform-wide: an operator's or a rule's
            // quarantine of the same plugin stays.
            var now = time.GetUtcNow();
            foreach (var back in relisted)
            {
                await db.Quarantines.Where(q => q.SetBy == QuarantinedBy && q.PluginId == back.PluginId && q.Version == back.Version && q.WorkspaceId == null && q.ReleasedAt == null)
                    .ExecuteUpdateAsync(u => u.SetProperty(q => q.ReleasedAt, now).SetProperty(q => q.ReleasedBy, QuarantinedBy), ct);
            }
            await services.GetRequiredService<PluginState>().ChangedAsync(ct);
        }

        foreach (var newest in listed.GroupBy(t => t.Plugin!).Select(g => g.MaxBy(t => SemVersion.Parse(t.Version!))))
        {
            var current = installed.FirstOrDefault(p => p.PluginId == newest.Plugin && p.Current);
            if (current is not null && SemVersion.Parse(current.Version) >= SemVersion.Parse(newest.Version!))
            {
                continue;
            }
            await InstallAsync(services, newest.Name, newest.Info, ct);
        }
    }

    private async Task InstallAsync(IServiceProvider services, string name, TargetFileInfo info, CancellationToken ct)
    {
        var client = http.CreateClient(HttpClientName);
        var remote = new HttpTufRemote(client, new Uri(client.BaseAddress!, "tuf/"));
        try
        {
            // Never more than the listed length is read; the catalog then checks the bytes against the listing.
            var bundle = await remote.FetchAsync("targets/" + TufTrustedSet.TargetFileName(name, info.Sha256), info.Length, ct);
            if (bundle is null)
            {
                LogInstallFailed(logger, name, "the registry does not serve the listed bundle");
                return;
            }
            var verified = await services.GetRequiredService<PluginCatalog>().InstallAsync(new MemoryStream(bundle, writable: false), ct);
            LogInstalled(logger, verified.Manifest.Id, verified.Manifest.Version);
        }
        catch (BundleException e) when (e.Error == BundleError.NotNewer)
        {
            // Another replica installed it (or a newer one) first.
        }
        catch (DbUpdateException)
        {
            // Another replica inserted the same version at the same moment.
            services.GetRequiredService<PluginsDbContext>().ChangeTracker.Clear();
        }
#pragma warning disable CA1031 // One version that cannot be fetched or installed must not keep the others (or the next tick) from running.
        catch (Exception e) when (!ct.IsCancellationRequested)
#pragma warning restore CA1031
        {
            LogInstallFailed(logger, name, $"{e.GetType().Name}: {e.Message}");
        }
    }

    [LoggerMessage(5, LogLevel.Warning, "Plugin {PluginId} {Version} quarantined platform-wide: {Reason}")]
    private static partial void LogWithdrawn(ILogger logger, string pluginId, string version, string reason);

    [LoggerMessage(1, LogLevel.Warning, "The community registry's metadata was refused ({Failure}): {Message}. Installs wait; installed versions keep running")]
    private static partial void LogRefused(ILogger logger, string failure, string message);

    [LoggerMessage(2, LogLevel.Warning, "The community registry is unreachable ({Error}: {Message}); retrying")]
    private static partial void LogUnreachable(ILogger logger, string error, string message);

    [LoggerMessage(3, LogLevel.Information, "Installed {PluginId} {Version} from the community registry")]
    private static partial void LogInstalled(ILogger logger, string pluginId, string version);

    [LoggerMessage(4, LogLevel.Warning, "Installing {Target} from the community registry failed: {Message}")]
    private static partial void LogInstallFailed(ILogger logger, string target, string message);
}
