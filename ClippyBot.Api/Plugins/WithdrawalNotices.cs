using ClippyBot.Api.Audit;
using ClippyBot.Api.Data;
using ClippyBot.Api.Workspaces;
using ClippyBot.Email;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Plugins;

/// <summary>That a workspace's owners were told a version it runs was withdrawn: once per workspace, plugin and version.</summary>
public sealed class PluginWithdrawalNotice
{
    public Guid WorkspaceId { get; set; }

    public required string PluginId { get; set; }

    public required string Version { get; set; }

    public required string Reason { get; set; }

    public DateTimeOffset NotifiedAt { get; set; }
}

/// <summary>
/// When the community registry withdraws a version (yanked, or its publisher key revoked), every PluginHost replica
/// quarantines it; this worker reads those withdrawals from the PluginHost and mails the owners of each workspace that
/// runs that version, once (a unique row per workspace, plugin and version: replicas never mail twice), with the
/// registry's reason, and records it in the workspace's audit chain.
/// </summary>
public sealed partial class WithdrawalNotifier(IServiceScopeFactory scopes, TimeProvider time, EmailOutbox outbox,
    Microsoft.Extensions.Options.IOptions<PluginNoticeOptions> options, ClippyBot.ServiceDefaults.Data.MigrationStatus<ApiDbContext> migrations,
    ILogger<WithdrawalNotifier> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await migrations.WhenCompleted(stoppingToken);
        using var timer = new PeriodicTimer(options.Value.WithdrawalCheckInterval, time);
        do
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                await NotifyAsync(scope.ServiceProvider, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Whatever fails (the PluginHost away, the database busy), the next tick tries again.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogFailed(logger, e.GetType().Name);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>One pass: every withdrawal, every workspace running it that was not told yet.</summary>
    public async Task<int> NotifyAsync(IServiceProvider services, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(services);
        var host = services.GetRequiredService<PluginHostClient>();
        var db = services.GetRequiredService<ApiDbContext>();
        var audit = services.GetRequiredService<AuditLog>();
        var sent = 0;
        foreach (var withdrawal in await host.WithdrawalsAsync(ct))
        {
            var affected = await db.WorkspacePlugins.AsNoTracking()
                .Where(p => p.PluginId == withdrawal.PluginId && p.ConsentedVersion == withdrawal.Version)
                .Where(p => !db.PluginWithdrawalNotices.Any(n => n.WorkspaceId == p.WorkspaceId && n.PluginId == p.PluginId && n.Version == p.ConsentedVersion))
                .Select(p => p.WorkspaceId).Take(500).ToListAsync(ct);
            foreach (var workspaceId in affected)
            {
                var reason = withdrawal.Reason.Length > 500 ? withdrawal.Reason[..500] : withdrawal.Reason;
                db.PluginWithdrawalNotices.Add(new PluginWithdrawalNotice
                {
                    WorkspaceId = workspaceId, PluginId = withdrawal.PluginId, Version = withdrawal.Version, Reason = reason, NotifiedAt = time.GetUtcNow(),
                });
                try
                {
                    await db.SaveChangesAsync(ct);
                }
                catch (DbUpdateException)
                {
                    // Another replica told this workspace at the same moment.
                    db.ChangeTracker.Clear();
                    continue;
                }
                var workspace = await db.Workspaces.AsNoTracking().Where(w => w.Id == workspaceId)
                    .Select(w => new { w.Name, Owners = w.Members.Where(m => m.Role == WorkspaceRole.Owner && m.Email != "").Select(m => m.Email).ToList() })
                    .SingleOrDefaultAsync(ct);
                var queued = true;
                foreach (var owner in workspace?.Owners ?? [])
                {
                    queued &= outbox.TryEnqueue(EmailMessage.Notice(owner, "plugin-withdrawn",
                        $"{withdrawal.PluginId} {withdrawal.Version} was withdrawn from {workspace!.Name}",
                        $"The plugin {withdrawal.PluginId} version {withdrawal.Version}, installed in your workspace \"{workspace.Name}\", was withdrawn "
                        + "from the ClippyBot plugin registry and has stopped running everywhere.",
                        "Reason: " + reason,
                        "Events sent to it are refused with this reason. When a newer approved version is in the catalog you can adopt it "
                        + "(an update that asks for more permissions needs your consent again), or remove the plugin."));
                    sent++;
                }
                if (!queued)
                {
                    // The outbox is full (the mail server has been away a while): forget the notice, so the next pass tries again.
                    await db.PluginWithdrawalNotices.Where(n => n.WorkspaceId == workspaceId && n.PluginId == withdrawal.PluginId && n.Version == withdrawal.Version)
                        .ExecuteDeleteAsync(ct);
                    db.ChangeTracker.Clear();
                    continue;
                }
                await audit.RecordAsync(workspaceId, "plugin.withdrawn", $"{withdrawal.PluginId}:{withdrawal.Version}: owners notified", ct: ct);
            }
        }
        return sent;
    }

    [LoggerMessage(1, LogLevel.Warning, "Plugin withdrawal notices not sent this time ({Error}); the next check tries again")]
    private static partial void LogFailed(ILogger logger, string error);
}

/// <summary>Configuration section <c>Plugins:Notices</c>.</summary>
public sealed class PluginNoticeOptions
{
    public const string SectionName = "Plugins:Notices";

    /// <summary>How often the PluginHost's withdrawals are read (a yank reaches the PluginHosts within seconds; mail need not be faster).</summary>
    public TimeSpan WithdrawalCheckInterval { get; set; } = TimeSpan.FromSeconds(30);
}
