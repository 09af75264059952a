using ClippyBot.Api.Plugins;
using ClippyBot.Contracts;
using ClippyBot.ServiceDefaults.Detection;
using StackExchange.Redis;

namespace ClippyBot.Api.Detection;

/// <summary>
/// The PluginHost runs third-party code and holds no cache credentials, so its quarantines reach the alert rules through
/// the Api: each round reads the quarantines of the last two hours and raises a signal for each new one — once across
/// replicas (<c>SET NX</c> on its id), and a permission violation as its own signal too.
/// </summary>
public sealed partial class PluginSignalRelay(IConnectionMultiplexer redis, SecuritySignals signals, ILogger<PluginSignalRelay> logger)
{
    private const string SeenPrefix = "clippybot:api:detection:quarantine-seen:";
    private readonly HashSet<Guid> _seen = [];
    private readonly Lock _lock = new();

    public async Task RelayAsync(PluginHostClient host, CancellationToken ct)
    {
        IReadOnlyList<PluginHostClient.Quarantine> recent;
        try
        {
            recent = await host.RecentQuarantinesAsync(ct);
        }
        catch (Exception e) when (e is PluginHostUnavailableException or PluginHostClient.PluginHostProblemException)
        {
            LogUnavailable(logger, e.GetType().Name);
            return;
        }
        var db = redis.GetDatabase();
        foreach (var quarantine in recent.OrderBy(q => q.At))
        {
            lock (_lock)
            {
                if (_seen.Contains(quarantine.Id))
                {
                    continue;
                }
            }
            bool first;
            try
            {
                first = await db.StringSetAsync(SeenPrefix + quarantine.Id, "1", SecuritySignals.Retention + TimeSpan.FromHours(1), When.NotExists);
            }
            catch (Exception e) when (e is RedisException or TimeoutException)
            {
                LogUnavailable(logger, e.GetType().Name);
                return; // the next round tries this one again
            }
            lock (_lock)
            {
                _seen.Add(quarantine.Id);
            }
            if (!first)
            {
                continue; // another replica relayed it
            }
            var subject = $"{quarantine.PluginId}@{quarantine.Version}/{quarantine.WorkspaceId?.ToString() ?? "platform"}";
            signals.Raise(SecuritySignalNames.PluginQuarantined, subject, $"{quarantine.Reason} (by {quarantine.SetBy})");
            if (quarantine.SetBy == QuarantineRules.PermissionViolation)
            {
                signals.Raise(SecuritySignalNames.PluginPermissionViolation, subject, quarantine.Reason);
            }
        }
        lock (_lock)
        {
            // Only ids the PluginHost still lists need remembering.
            _seen.IntersectWith(recent.Select(q => q.Id));
        }
    }

    [LoggerMessage(1, LogLevel.Debug, "Plugin quarantines not read this round ({Error})")]
    private static partial void LogUnavailable(ILogger logger, string error);
}
