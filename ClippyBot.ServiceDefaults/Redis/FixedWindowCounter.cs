using System.Globalization;
using StackExchange.Redis;

namespace ClippyBot.ServiceDefaults.Redis;

/// <summary>
/// The one Redis counter: events per subject over fixed windows, shared by replicas. Identity's throttles (sign-in,
/// sign-up, the token endpoint) and the Api's rate limiter count with it, so every counter has one key format —
/// <c>{prefix}{subject}:{window number}</c>, windows numbered from <see cref="DateTimeOffset.MinValue"/> — and one expiry rule.
/// </summary>
public static class FixedWindowCounter
{
    /// <summary>A counter outlives its window this long, so a replica whose clock is slightly behind still finds it.</summary>
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(5);

    /// <summary>Counts one event of <paramref name="subject"/> in the window holding <paramref name="now"/>; returns the count so far and when that window ends.</summary>
    public static async Task<(long Count, DateTimeOffset WindowEnds)> CountAsync(IDatabase db, string prefix, string subject, TimeSpan window, DateTimeOffset now)
    {
        var index = WindowOf(now, window);
        var count = await IncrementAsync(db, Key(prefix, subject, index), window);
        return (count, EndOf(index, window));
    }

    /// <summary>The number of the window holding <paramref name="now"/>.</summary>
    public static long WindowOf(DateTimeOffset now, TimeSpan window) => now.UtcTicks / window.Ticks;

    /// <summary>When window <paramref name="index"/> ends.</summary>
    public static DateTimeOffset EndOf(long index, TimeSpan window) => new((index + 1) * window.Ticks, TimeSpan.Zero);

    /// <summary>The counter of <paramref name="subject"/> in window <paramref name="index"/>: <c>{prefix}{subject}:{index}</c>.</summary>
    public static string Key(string prefix, string subject, long index) => string.Create(CultureInfo.InvariantCulture, $"{prefix}{subject}:{index}");

    /// <summary>
    /// Adds <paramref name="by"/> (negative to give attempts back) to a window's counter; returns the new count. The expiry
    /// is pipelined with the increment — one round trip — and set on every call, so a counter never outlives its window
    /// by more than <see cref="Grace"/> even when an earlier expiry was lost.
    /// </summary>
    public static Task<long> IncrementAsync(IDatabase db, RedisKey key, TimeSpan window, long by = 1)
    {
        ArgumentNullException.ThrowIfNull(db);
        var count = db.StringIncrementAsync(key, by);
        _ = db.KeyExpireAsync(key, window + Grace, CommandFlags.FireAndForget);
        return count;
    }
}
