using System.Net;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace ClippyBot.Identity.Accounts;

/// <summary>Configuration section <c>LoginThrottle</c>.</summary>
public sealed class LoginThrottleOptions
{
    public const string SectionName = "LoginThrottle";

    public int MaxAttemptsPerWindow { get; set; } = 20;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Per-IP limit on password attempts, counted in Redis so it holds across replicas (fixed window). Complements
/// per-account lockout, which alone lets one IP try one password against many accounts.
/// </summary>
public sealed class LoginThrottle(IConnectionMultiplexer redis, IOptions<LoginThrottleOptions> options, TimeProvider time)
{
    private const string KeyPrefix = "clippybot:login-attempts:";

    /// <summary>Counts an attempt; false when this address has used up its window.</summary>
    public async Task<bool> TryAttemptAsync(IPAddress? address)
    {
        var settings = options.Value;
        var (count, _) = await FixedWindowCounter.CountAsync(redis.GetDatabase(), KeyPrefix, address?.ToString() ?? "unknown", settings.Window, time.GetUtcNow());
        return count <= settings.MaxAttemptsPerWindow;
    }
}
