using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using ClippyBot.Identity.Accounts;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

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
/// Per-IP limit on failed requests to the token, introspection and revocation endpoints — the login form's throttle for
/// the machine-facing endpoints. Only failures are counted (in Redis, shared by replicas), so well-behaved clients cost
/// nothing; an address past the limit is refused everything, a correct secret included (or guessing would still pay),
/// until its window ends. The block is announced on Redis and kept in memory by every replica, so the check on each request
/// — including the client-credentials fast path — is a dictionary lookup, not a round trip.
/// </summary>
public sealed class TokenEndpointThrottle(IConnectionMultiplexer redis, IOptions<TokenThrottleOptions> options, TimeProvider time) : IHostedService
{
    private const string KeyPrefix = "clippybot:token-failures:";
    private static readonly RedisChannel BlockedChannel = RedisChannel.Literal("clippybot:identity:token-blocked");

    private readonly ConcurrentDictionary<string, DateTimeOffset> _blocked = new(StringComparer.Ordinal);

    public static readonly string[] Paths = ["/connect/token", "/connect/introspect", "/connect/revoke"];

    public async Task StartAsync(CancellationToken cancellationToken) =>
        await redis.GetSubscriber().SubscribeAsync(BlockedChannel, (_, message) =>
        {
            var parts = message.ToString().Split(' ', 2);
            if (parts.Length == 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var until))
            {
                _blocked[parts[0]] = DateTimeOffset.FromUnixTimeSeconds(until);
            }
        });

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>When the address may try again, or null when it is not blocked.</summary>
    public DateTimeOffset? BlockedUntil(IPAddress? address)
    {
        if (_blocked.IsEmpty || !_blocked.TryGetValue(Key(address), out var until))
        {
            return null;
        }
        if (until > time.GetUtcNow())
        {
            return until;
        }
        _blocked.TryRemove(Key(address), out _);
        return null;
    }

    /// <summary>Counts a failed request; the one that reaches the limit blocks the address on every replica.</summary>
    public async Task RecordFailureAsync(IPAddress? address)
    {
        var settings = options.Value;
        var (count, windowEnds) = await FixedWindowCounter.CountAsync(redis.GetDatabase(), KeyPrefix, Key(address), settings.Window, time.GetUtcNow());
        if (count == settings.MaxFailuresPerWindow)
        {
            _blocked[Key(address)] = windowEnds;
            await redis.GetSubscriber().PublishAsync(BlockedChannel, $"{Key(address)} {windowEnds.ToUnixTimeSeconds()}");
        }
    }

    private static string Key(IPAddress? address) => address?.ToString() ?? "unknown";
}
