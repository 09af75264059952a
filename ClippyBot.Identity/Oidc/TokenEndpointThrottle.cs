using ClippyBot.ServiceDefaults.Edge;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Edge;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using ClippyBot.ServiceDefaults.Redis;

namespace ClippyBot.Identity.Oidc;

/// <summary>Configuration section <c>TokenThrottle</c>.</summary>
public sealed class TokenThrottleOptions
{
    public const string SectionName = "TokenThrottle";

    /// <summary>Failed requests (wrong or unknown client, bad code or refresh token) one address may make per window.</summary>
    public int MaxFailuresPerWindow { get; set; } = 50;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Per-address limit on failed requests to the token, introspection and revocation endpoints — the login form's throttle for
/// the machine-facing endpoints. Only failures are counted (in Redis, shared by replicas), so well-behaved clients cost
/// nothing; an address at or past the limit is refused everything, a correct secret included (or guessing would still pay),
/// until its window ends. A block is written to Redis with its expiry and announced; every replica mirrors the blocks in
/// memory (loaded when it subscribes and again after any connection change), so the check on each request — including the
/// client-credentials fast path — is a dictionary lookup, not a round trip. A replica that missed an announcement blocks the
/// address at its next failure, since any count at or above the limit blocks, not only the one that crosses it.
/// </summary>
public sealed partial class TokenEndpointThrottle : IHostedService, IDisposable
{
    private const string CounterPrefix = "clippybot:token-failures:";
    private const string BlockPrefix = "clippybot:token-blocked:";
    private static readonly RedisChannel BlockedChannel = RedisChannel.Literal("clippybot:identity:token-blocked");

    private readonly IConnectionMultiplexer _redis;
    private readonly IOptions<TokenThrottleOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<TokenEndpointThrottle>? _logger;
    private readonly ConcurrentDictionary<string, DateTimeOffset> _blocked = new(StringComparer.Ordinal);
    private readonly RedisMirror _mirror;

    private readonly ClippyBot.ServiceDefaults.Detection.SecuritySignals? _signals;

    public TokenEndpointThrottle(IConnectionMultiplexer redis, IOptions<TokenThrottleOptions> options, TimeProvider time, ILogger<TokenEndpointThrottle>? logger = null,
        ClippyBot.ServiceDefaults.Detection.SecuritySignals? signals = null)
    {
        _signals = signals;
        _redis = redis;
        _options = options;
        _time = time;
        _logger = logger;
        _mirror = new RedisMirror(redis, BlockedChannel, message =>
        {
            var parts = message.ToString().Split(' ', 2);
            if (parts.Length == 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var until))
            {
                Block(parts[0], DateTimeOffset.FromUnixTimeSeconds(until));
            }
        });
    }

    public Task StartAsync(CancellationToken cancellationToken) => LoadAsync();

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Subscribes (once) and loads the blocks kept in Redis; again after a connection change.</summary>
    public Task LoadAsync() => _mirror.LoadAsync(async (server, database) =>
    {
        await foreach (var key in server.KeysAsync(database.Database, BlockPrefix + "*", pageSize: 1000))
        {
            if ((long?)await database.StringGetAsync(key) is { } until)
            {
                Block(key.ToString()[BlockPrefix.Length..], DateTimeOffset.FromUnixTimeSeconds(until));
            }
        }
    }, e => LogLoadFailed(_logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger<TokenEndpointThrottle>.Instance, e.GetType().Name));

    /// <summary>When the address may try again, or null when it is not blocked.</summary>
    public DateTimeOffset? BlockedUntil(IPAddress? address)
    {
        if (!_mirror.Loaded)
        {
            // Blocks announced while this replica was not listening are read back in the background.
            _ = LoadAsync();
        }
        var subject = ClientAddressKey.Of(address);
        if (_blocked.IsEmpty || !_blocked.TryGetValue(subject, out var until))
        {
            return null;
        }
        if (until > _time.GetUtcNow())
        {
            return until;
        }
        _blocked.TryRemove(new KeyValuePair<string, DateTimeOffset>(subject, until));
        return null;
    }

    /// <summary>Counts a failed request; at or past the limit the address is blocked on every replica until the window ends.</summary>
    public async Task RecordFailureAsync(IPAddress? address)
    {
        var settings = _options.Value;
        var subject = ClientAddressKey.Of(address);
        var database = _redis.GetDatabase();
        var (count, windowEnds) = await FixedWindowCounter.CountAsync(database, CounterPrefix, subject, settings.Window, _time.GetUtcNow());
        if (count < settings.MaxFailuresPerWindow || (_blocked.TryGetValue(subject, out var known) && known >= windowEnds))
        {
            return;
        }
        Block(subject, windowEnds);
        _signals?.Raise(ClippyBot.Contracts.SecuritySignalNames.TokenThrottled, subject,
            string.Create(CultureInfo.InvariantCulture, $"blocked until {windowEnds:u} after {count} failures"));
        var until = windowEnds.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        await database.StringSetAsync(BlockPrefix + subject, until, windowEnds - _time.GetUtcNow() + TimeSpan.FromSeconds(1));
        await _redis.GetSubscriber().PublishAsync(BlockedChannel, $"{subject} {until}");
    }

    private void Block(string subject, DateTimeOffset until) =>
        _blocked.AddOrUpdate(subject, until, (_, known) => known > until ? known : until);

    public void Dispose() => _mirror.Dispose();

    [LoggerMessage(LogLevel.Warning, "Token throttle could not load its blocks ({Error}); blocks are re-learnt from the next failures")]
    private static partial void LogLoadFailed(ILogger logger, string error);
}
