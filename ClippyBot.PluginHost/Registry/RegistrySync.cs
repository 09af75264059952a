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
        using var timer = new PeriodicTimer(options.Value.RefreshInterval, time);
        do
        {
            try
            {
                await SyncOnceAsync(stoppingToken);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or Npgsql.NpgsqlException or DbUpdateException or TufException or BundleException
                                      && !stoppingToken.IsCancellationRequested)
            {
                // The registry or the database is unreachable: what is trusted stays; the next tick tries again.
                LogUnreachable(logger, e.GetType().Name, e.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

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
            .Select(t => (Name: t.Key, Info: t.Value, Plugin: t.Value.Custom["plugin"]?.GetValue<string>(), Version: t.Value.Custom["version"]?.GetValue<string>()))
            .Where(t => t.Plugin is not null && t.Version is not null && SemVersion.TryParse(t.Version, out _))
            .ToList();
        var installed = await db.InstalledPlugins.AsNoTracking().Select(p => new { p.PluginId, p.Version, p.Current }).ToListAsync(ct);

        foreach (var newest in listed.GroupBy(t => t.Plugin!).Select(g => g.MaxBy(t => SemVersion.Parse(t.Version!))))
        {
            var current = installed.FirstOrDefault(p => p.PluginId == newest.Plugin && p.Current);
            if (current is not null && SemVersion.Parse(current.Version) >= SemVersion.Parse(newest.Version!))
            {
                continue;
            }
            await InstallAsync(services, newest.Name, newest.Info, ct);
        }

        var listedVersions = listed.Select(t => (t.Plugin!, t.Version!)).ToHashSet();
        var invoker = services.GetRequiredService<PluginInvoker>();
        var openByRegistry = await db.Quarantines.AsNoTracking().Where(q => q.SetBy == QuarantinedBy && q.ReleasedAt == null && q.WorkspaceId == null)
            .Select(q => new { q.PluginId, q.Version }).ToListAsync(ct);
        foreach (var withdrawn in installed.Where(p => !listedVersions.Contains((p.PluginId, p.Version)))
                     .Where(p => !openByRegistry.Any(q => q.PluginId == p.PluginId && q.Version == p.Version)))
        {
            await invoker.QuarantineAsync(withdrawn.PluginId, withdrawn.Version, null, WithdrawnReason, QuarantinedBy, ct);
        }
        foreach (var back in openByRegistry.Where(q => listedVersions.Contains((q.PluginId, q.Version))))
        {
            await invoker.ReleaseAsync(back.PluginId, back.Version, QuarantinedBy, ct);
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
        }
        catch (Exception e) when (e is BundleException or TufException or Wasmtime.WasmtimeException)
        {
            LogInstallFailed(logger, name, e.Message);
        }
    }

    [LoggerMessage(1, LogLevel.Warning, "The community registry's metadata was refused ({Failure}): {Message}. Installs wait; installed versions keep running")]
    private static partial void LogRefused(ILogger logger, string failure, string message);

    [LoggerMessage(2, LogLevel.Warning, "The community registry is unreachable ({Error}: {Message}); retrying")]
    private static partial void LogUnreachable(ILogger logger, string error, string message);

    [LoggerMessage(3, LogLevel.Information, "Installed {PluginId} {Version} from the community registry")]
    private static partial void LogInstalled(ILogger logger, string pluginId, string version);

    [LoggerMessage(4, LogLevel.Warning, "Installing {Target} from the community registry failed: {Message}")]
    private static partial void LogInstallFailed(ILogger logger, string target, string message);
}
