using ClippyBot.Contracts;
using System.Diagnostics.Metrics;
using System.Security.Cryptography;
using ClippyBot.PluginHost.Data;
using ClippyBot.Plugins.Sandbox;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.PluginHost.Plugins;

/// <summary>
/// Invokes installed plugins: refuses quarantined versions, runs the sandbox, writes a crash-log entry for every trap,
/// limit hit or permission denial, reports metrics per plugin and version, and applies the anomaly rules.
/// </summary>
public sealed partial class PluginInvoker(
    PluginsDbContext db, PluginCatalog catalog, PluginRuntime runtime, PluginMetrics metrics, PluginState state, IOptions<QuarantineOptions> rules,
    IOptions<SandboxOptions> sandbox, TimeProvider time, ILogger<PluginInvoker> logger, WorkspaceInvocationGate gate)
{
    /// <param name="version">The version the workspace consented to (null: the current one); it runs under its own manifest.</param>
    public async Task<InvocationResult> InvokeAsync(string pluginId, Guid workspaceId, string entryEvent, byte[] input, IReadOnlySet<string> granted, CancellationToken ct,
        InvocationCredentials? credentials = null, string? version = null)
    {
        var loaded = await catalog.LoadAsync(pluginId, ct, version);
        if (loaded is not { } plugin)
        {
            return Refused(version is null ? "not_installed" : "version_not_installed");
        }
        version = plugin.Row.Version;
        if (state.IsQuarantined(pluginId, version, workspaceId) ?? await IsQuarantinedAsync(pluginId, version, workspaceId, ct))
        {
            metrics.Record(pluginId, version, "refused", "quarantined", 0, TimeSpan.Zero);
            return Refused("quarantined");
        }
        var export = plugin.Compiled.Manifest.EntryPoints.FirstOrDefault(e => e.Event == entryEvent)?.Export;
        if (export is null)
        {
            return Refused("no_entry_point:" + entryEvent);
        }
        if (!gate.TryEnter(workspaceId))
        {
            metrics.Record(pluginId, version, "refused", "workspace_busy", 0, TimeSpan.Zero);
            return Refused("workspace_busy");
        }
        InvocationResult result;
        try
        {
            result = plugin.Compiled.ImportedPermissions.Contains(PluginPermissions.StorageKv) && granted.Contains(PluginPermissions.StorageKv)
                ? await InvokeWithStorageAsync(plugin.Compiled, pluginId, workspaceId, export, input, granted, credentials, ct)
                : runtime.Invoke(plugin.Compiled, export, input, granted, credentials: credentials);
        }
        finally
        {
            gate.Exit(workspaceId);
        }
        metrics.Record(pluginId, version, result.Outcome.ToString().ToLowerInvariant(), result.Kind, result.FuelUsed, result.Duration);
        var permissionViolation = result.Kind.StartsWith("permission_not_granted", StringComparison.Ordinal);
        if (result.Outcome is InvocationOutcome.Trapped or InvocationOutcome.LimitHit || permissionViolation)
        {
            db.CrashLog.Add(new CrashLogEntry
            {
                PluginId = pluginId, Version = version, WorkspaceId = workspaceId, Outcome = result.Outcome.ToString(), Kind = result.Kind,
                Backtrace = result.Backtrace, FuelUsed = result.FuelUsed, DurationMs = result.Duration.TotalMilliseconds, MemoryBytes = result.MemoryBytes,
                InputBytes = input.Length, InputSha256 = Convert.ToHexStringLower(SHA256.HashData(input)), At = time.GetUtcNow(),
            });
            // Not the caller's token: a caller who hangs up right after a trap must not skip the crash log or the
            // quarantine rules (hanging up after each failure would otherwise keep a failing version running for ever).
            await db.SaveChangesAsync(CancellationToken.None);
            LogFailure(pluginId, version, workspaceId, result.Outcome.ToString(), result.Kind);
            await ApplyRulesAsync(pluginId, version, workspaceId, permissionViolation, CancellationToken.None);
        }
        return result with { Version = version };

        InvocationResult Refused(string kind) => new(InvocationOutcome.Refused, kind, [], [], 0, TimeSpan.Zero, 0, null) { Version = version };
    }

    /// <summary>
    /// Loads the plugin's storage for this workspace, runs, and writes it back only if the invocation completed. The
    /// per-(workspace, plugin) lock is a session-level advisory lock (so concurrent invocations cannot lose each other's
    /// updates on any replica), but no transaction is open while the plugin runs, and only the write is retried: a
    /// transient error at commit never runs the plugin a second time for one event.
    /// </summary>
    private async Task<InvocationResult> InvokeWithStorageAsync(CompiledPlugin plugin, string pluginId, Guid workspaceId, string export, byte[] input,
        IReadOnlySet<string> granted, InvocationCredentials? credentials, CancellationToken ct)
    {
        var quota = Math.Min(sandbox.Value.MaxKvQuotaBytes, plugin.Manifest.RequestedKvQuotaBytes ?? sandbox.Value.DefaultKvQuotaBytes);
        var lockKey = $"{workspaceId:N}/{pluginId}";
        // The lock belongs to this connection, which stays open (and outside any transaction) until it is released.
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_lock(hashtextextended({lockKey}, 0))", ct);
            try
            {
                var loaded = await db.PluginKv.AsNoTracking().Where(k => k.WorkspaceId == workspaceId && k.PluginId == pluginId).ToListAsync(ct);
                var kv = new KvSnapshot(loaded.ToDictionary(r => r.Key, r => r.Value, StringComparer.Ordinal), quota);
                var result = runtime.Invoke(plugin, export, input, granted, kv, credentials);
                if (result.Succeeded && kv.Changed)
                {
                    await db.Database.CreateExecutionStrategy().ExecuteAsync(async () =>
                    {
                        db.ChangeTracker.Clear();
                        await using var tx = await db.Database.BeginTransactionAsync(CancellationToken.None);
                        await db.PluginKv.Where(k => k.WorkspaceId == workspaceId && k.PluginId == pluginId).ExecuteDeleteAsync(CancellationToken.None);
                        db.PluginKv.AddRange(kv.Entries.Select(e => new PluginKvEntry { WorkspaceId = workspaceId, PluginId = pluginId, Key = e.Key, Value = e.Value }));
                        await db.SaveChangesAsync(CancellationToken.None);
                        await tx.CommitAsync(CancellationToken.None);
                    });
                }
                return result;
            }
            finally
            {
                await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_unlock(hashtextextended({lockKey}, 0))", CancellationToken.None);
            }
        }
        finally
        {
            await db.Database.CloseConnectionAsync();
        }
    }

    /// <summary>The kill switch: quarantine by hand (all versions with <c>*</c>; platform-wide when <paramref name="workspaceId"/> is null).</summary>
    public async Task QuarantineAsync(string pluginId, string version, Guid? workspaceId, string reason, string by, CancellationToken ct)
    {
        db.Quarantines.Add(new QuarantineEntry
        {
            Id = Guid.CreateVersion7(), PluginId = pluginId, Version = version, WorkspaceId = workspaceId, Reason = reason, SetBy = by, At = time.GetUtcNow(),
        });
        await db.SaveChangesAsync(ct);
        await state.ChangedAsync(ct);
        LogQuarantined(pluginId, version, workspaceId?.ToString() ?? "platform", reason, by);
    }

    /// <summary>Releases every open quarantine of the plugin (and version, unless <c>*</c>); returns how many.</summary>
    public async Task<int> ReleaseAsync(string pluginId, string version, string by, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var released = await db.Quarantines
            .Where(q => q.PluginId == pluginId && (version == "*" || q.Version == version || q.Version == "*") && q.ReleasedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(q => q.ReleasedAt, now).SetProperty(q => q.ReleasedBy, by), ct);
        await state.ChangedAsync(ct);
        LogReleased(pluginId, version, by, released);
        return released;
    }

    /// <summary>
    /// Releases every quarantine an operator or a rule set (the operator's "release all"); the registry's withdrawals stay,
    /// since its signed metadata still says the version is withdrawn.
    /// </summary>
    public async Task<int> ReleaseAllAsync(string by, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var released = await db.Quarantines.Where(q => q.ReleasedAt == null && q.SetBy != Registry.RegistrySync.QuarantinedBy)
            .ExecuteUpdateAsync(s => s.SetProperty(q => q.ReleasedAt, now).SetProperty(q => q.ReleasedBy, by), ct);
        await state.ChangedAsync(ct);
        LogReleased("*", "*", by, released);
        return released;
    }

    public Task<bool> IsQuarantinedAsync(string pluginId, string version, Guid workspaceId, CancellationToken ct) =>
        db.Quarantines.AnyAsync(q => q.PluginId == pluginId && (q.Version == version || q.Version == "*") && q.ReleasedAt == null
                                     && (q.WorkspaceId == null || q.WorkspaceId == workspaceId), ct);

    private async Task ApplyRulesAsync(string pluginId, string version, Guid workspaceId, bool permissionViolation, CancellationToken ct)
    {
        var options = rules.Value;
        if (permissionViolation && options.OnPermissionViolation && !await IsQuarantinedAsync(pluginId, version, workspaceId, ct))
        {
            await QuarantineAsync(pluginId, version, workspaceId, "attempted a capability the workspace did not grant", ClippyBot.Contracts.QuarantineRules.PermissionViolation, ct);
            return;
        }
        // Counted per workspace: a tenant's own failures quarantine the version for that tenant only.
        var since = time.GetUtcNow() - options.Window;
        var byWorkspace = await db.CrashLog.Where(c => c.PluginId == pluginId && c.Version == version && c.At >= since)
            .GroupBy(c => c.WorkspaceId).Select(g => new { Workspace = g.Key, Failures = g.Count() }).ToListAsync(ct);
        var here = byWorkspace.FirstOrDefault(w => w.Workspace == workspaceId)?.Failures ?? 0;
        if (here >= options.FailuresThreshold && !await IsQuarantinedAsync(pluginId, version, workspaceId, ct))
        {
            await QuarantineAsync(pluginId, version, workspaceId, $"{here} traps or limit hits in this workspace within {options.Window.TotalMinutes:0} minutes", ClippyBot.Contracts.QuarantineRules.FailureRate, ct);
        }
        // Platform-wide only on evidence from several workspaces.
        var total = byWorkspace.Sum(w => w.Failures);
        if (byWorkspace.Count >= options.PlatformMinWorkspaces && total >= options.FailuresThreshold
            && !await db.Quarantines.AnyAsync(q => q.PluginId == pluginId && q.Version == version && q.WorkspaceId == null && q.ReleasedAt == null, ct))
        {
            await QuarantineAsync(pluginId, version, null,
                $"{total} traps or limit hits in {byWorkspace.Count} workspaces within {options.Window.TotalMinutes:0} minutes", ClippyBot.Contracts.QuarantineRules.FailureRate, ct);
        }
    }

    [LoggerMessage(LogLevel.Warning, "Plugin {PluginId} {Version} in workspace {WorkspaceId}: {Outcome} ({Kind})")]
    private partial void LogFailure(string pluginId, string version, Guid workspaceId, string outcome, string kind);

    [LoggerMessage(LogLevel.Warning, "Plugin {PluginId} {Version} quarantined ({Scope}): {Reason}, by {By}")]
    private partial void LogQuarantined(string pluginId, string version, string scope, string reason, string by);

    [LoggerMessage(LogLevel.Warning, "Plugin {PluginId} {Version} released from {Count} quarantine(s) by {By}")]
    private partial void LogReleased(string pluginId, string version, string by, int count);
}

/// <summary>Per plugin and version, as OpenTelemetry metrics (meter <see cref="MeterName"/>).</summary>
public sealed class PluginMetrics : IDisposable
{
    public const string MeterName = "ClippyBot.Plugins";
    private readonly Meter _meter;
    private readonly Counter<long> _invocations;
    private readonly Histogram<double> _duration;
    private readonly Counter<long> _fuel;

    public PluginMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        _meter = meters.Create(MeterName);
        _invocations = _meter.CreateCounter<long>("clippybot.plugins.invocations", description: "Plugin invocations by outcome (completed, trapped, limithit, refused) and kind.");
        _duration = _meter.CreateHistogram<double>("clippybot.plugins.duration", unit: "ms", description: "Plugin invocation wall time.");
        _fuel = _meter.CreateCounter<long>("clippybot.plugins.fuel", description: "Fuel consumed by plugin invocations.");
    }

    public void Record(string pluginId, string version, string outcome, string kind, long fuel, TimeSpan duration)
    {
        var tags = new System.Diagnostics.TagList { { "plugin", pluginId }, { "version", version }, { "outcome", outcome }, { "kind", kind.Split(':')[0] } };
        _invocations.Add(1, tags);
        _duration.Record(duration.TotalMilliseconds, tags);
        _fuel.Add(fuel, tags);
    }

    public void Dispose() => _meter.Dispose();
}
