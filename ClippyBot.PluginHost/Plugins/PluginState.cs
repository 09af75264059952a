using ClippyBot.PluginHost.Data;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Npgsql;

namespace ClippyBot.PluginHost.Plugins;

/// <summary>How fresh each replica's view of plugin state is kept.</summary>
public sealed class PluginStateOptions
{
    public const string SectionName = "PluginState";

    /// <summary>The snapshot is re-read at least this often, even if every announcement was lost.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>An older snapshot is not used (callers ask the database).</summary>
    public TimeSpan StaleAfter { get; set; } = TimeSpan.FromSeconds(5);

    public const string SafeRange = "PluginState:RefreshInterval must be 100 ms to 10 s and PluginState:StaleAfter at least twice that and at most 60 s "
        + "(outside Production both may be up to a day, for tests that switch the periodic refresh off).";

    /// <summary>
    /// A tiny interval would reload in a tight loop; a long StaleAfter would let a stalled refresher leave a quarantine
    /// unenforced for that long; StaleAfter near RefreshInterval would send every invocation to the database.
    /// </summary>
    public static bool IsSafe(PluginStateOptions options, IHostEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(environment);
        var ceiling = environment.IsProduction() ? TimeSpan.FromSeconds(10) : TimeSpan.FromDays(1);
        var staleCeiling = environment.IsProduction() ? TimeSpan.FromSeconds(60) : TimeSpan.FromDays(1);
        return options.RefreshInterval >= TimeSpan.FromMilliseconds(100) && options.RefreshInterval <= ceiling
            && options.StaleAfter >= options.RefreshInterval * 2 && options.StaleAfter <= staleCeiling;
    }
}

/// <summary>
/// What every invocation needs to know besides the code — which version of each plugin is current, which are quarantined —
/// as an in-memory snapshot per replica, so the invocation path does not wait for the database. The snapshot is
/// re-read after every change made through this replica (before the change is acknowledged), when another replica
/// announces a change (PostgreSQL NOTIFY on pluginsdb: milliseconds), and every <see cref="PluginStateOptions.RefreshInterval"/>
/// regardless (the bound if an announcement is lost). A snapshot older than <see cref="PluginStateOptions.StaleAfter"/>
/// is not used: callers ask the database, so a stuck refresher can never leave a quarantine unenforced.
/// Announcements go through the PluginHost's own database, not Redis, so the service that runs third-party code holds
/// no cache credential at all: nothing in Redis (revocation markers, throttles) is its business.
/// </summary>
public sealed partial class PluginState(IServiceScopeFactory scopes, IOptions<PluginStateOptions> options, TimeProvider time, ILogger<PluginState> logger) : IDisposable
{
    /// <summary>NOTIFY channels are per database: only pluginsdb's sessions hear this one.</summary>
    private const string Channel = "clippybot_plugin_state";
    private static readonly TimeSpan FirstListenRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LastListenRetry = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private volatile Snapshot? _snapshot;
    private readonly SemaphoreSlim _changed = new(0, 1);

    public sealed record CurrentVersion(string Version, string WasmSha256);

    private sealed record Quarantine(string PluginId, string Version, Guid? WorkspaceId);

    private sealed record Snapshot(IReadOnlyDictionary<string, CurrentVersion> Versions, IReadOnlyList<Quarantine> Quarantines, DateTimeOffset LoadedAt);

    /// <summary>The current version as of the snapshot; null when the snapshot is too old to rely on (ask the database).</summary>
    public (bool Known, CurrentVersion? Version) CurrentVersionOf(string pluginId) =>
        Fresh() is { } s ? (true, s.Versions.GetValueOrDefault(pluginId)) : (false, null);

    /// <summary>Whether the version is quarantined for the workspace; null when the snapshot is too old to rely on.</summary>
    public bool? IsQuarantined(string pluginId, string version, Guid workspaceId) =>
        Fresh() is { } s
            ? s.Quarantines.Any(q => q.PluginId == pluginId && (q.Version == version || q.Version == "*") && (q.WorkspaceId == null || q.WorkspaceId == workspaceId))
            : null;

    /// <summary>
    /// After a change committed through this replica: re-read now, and tell the other replicas. The change is already
    /// committed, so neither step follows the caller's cancellation (an aborted request must not leave this replica's
    /// view or the announcement behind), and a failed announcement is only logged: the periodic refresh bounds it.
    /// </summary>
    public async Task ChangedAsync(CancellationToken ct)
    {
        _ = ct;
        await RefreshAsync(CancellationToken.None);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<PluginsDbContext>().Database.ExecuteSqlRawAsync("NOTIFY " + Channel, CancellationToken.None);
        }
#pragma warning disable CA1031 // whatever failed (including EF's RetryLimitExceededException), the change stands
        catch (Exception e)
#pragma warning restore CA1031
        {
            LogAnnounceFailed(logger, e.GetType().Name);
        }
    }

    public async Task RefreshAsync(CancellationToken ct)
    {
        await _refreshing.WaitAsync(ct);
        try
        {
            var started = time.GetUtcNow();
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<PluginsDbContext>();
            var versions = await db.InstalledPlugins.AsNoTracking().Where(p => p.Current)
                .Select(p => new { p.PluginId, p.Version, p.WasmSha256 }).ToListAsync(ct);
            var quarantines = await db.Quarantines.AsNoTracking().Where(q => q.ReleasedAt == null)
                .Select(q => new Quarantine(q.PluginId, q.Version, q.WorkspaceId)).ToListAsync(ct);
            // Stamped with the time the reads began: a change committed during them is seen by the next refresh.
            _snapshot = new Snapshot(versions.ToDictionary(v => v.PluginId, v => new CurrentVersion(v.Version, v.WasmSha256), StringComparer.Ordinal),
                quarantines, started);
        }
        finally
        {
            _refreshing.Release();
        }
    }

    internal async Task RunAsync(CancellationToken stoppingToken)
    {
        await scopes.CreateAsyncScope().ServiceProvider.GetRequiredService<MigrationStatus<PluginsDbContext>>().WhenCompleted(stoppingToken);
        var listening = ListenAsync(stoppingToken);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                LogRefreshFailed(logger, e.GetType().Name);
            }
            try
            {
                await _changed.WaitAsync(options.Value.RefreshInterval, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
        }
        await listening;
    }

    /// <summary>
    /// Holds one session on pluginsdb that LISTENs for other replicas' announcements, reconnecting after a failure. The
    /// session is unpooled: a LISTEN must never be handed to a request on a pooled connection (they are not reset).
    /// </summary>
    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        var retry = FirstListenRetry;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                string connectionString;
                await using (var scope = scopes.CreateAsyncScope())
                {
                    connectionString = scope.ServiceProvider.GetRequiredService<PluginsDbContext>().Database.GetConnectionString()
                        ?? throw new InvalidOperationException("pluginsdb has no connection string.");
                }
                var session = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, KeepAlive = 30 };
                await using var connection = new NpgsqlConnection(session.ConnectionString);
                await connection.OpenAsync(stoppingToken);
                connection.Notification += (_, _) => Signal();
                await using (var listen = new NpgsqlCommand("LISTEN " + Channel, connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                Signal(); // whatever was announced while this replica was not listening
                retry = FirstListenRetry;
                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // any failure: log, wait (doubling, with jitter, so replicas do not reconnect in step), reconnect
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogListenFailed(logger, e.GetType().Name);
                try
                {
                    await Task.Delay(retry * (0.5 + Random.Shared.NextDouble() / 2), time, stoppingToken);
                    retry = TimeSpan.FromTicks(Math.Min(retry.Ticks * 2, LastListenRetry.Ticks));
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private void Signal()
    {
        try
        {
            _changed.Release();
        }
        catch (SemaphoreFullException)
        {
            // Already signalled.
        }
    }

    public void Dispose()
    {
        _refreshing.Dispose();
        _changed.Dispose();
    }

    private Snapshot? Fresh() => _snapshot is { } s && time.GetUtcNow() - s.LoadedAt <= options.Value.StaleAfter ? s : null;

    [LoggerMessage(LogLevel.Warning, "Plugin state could not be announced to other replicas ({Error}); they pick it up at the next periodic refresh")]
    private static partial void LogAnnounceFailed(ILogger logger, string error);

    [LoggerMessage(LogLevel.Warning, "Listening for other replicas' plugin-state announcements failed ({Error}); retrying (the periodic refresh still bounds staleness)")]
    private static partial void LogListenFailed(ILogger logger, string error);

    [LoggerMessage(LogLevel.Warning, "Plugin state refresh failed ({Error}); invocations ask the database until it succeeds")]
    private static partial void LogRefreshFailed(ILogger logger, string error);
}

/// <summary>Runs <see cref="PluginState"/>'s refresher.</summary>
public sealed class PluginStateRefresher(PluginState state) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => state.RunAsync(stoppingToken);
}
