using System.Globalization;
using StackExchange.Redis;

namespace ClippyBot.Identity.Accounts;

/// <summary>A per-subject event counter in Redis over fixed windows (shared by replicas): the basis of Identity's throttles.</summary>
public static class FixedWindowCounter
{
    /// <summary>Counts one event of <paramref name="subject"/> in the window holding <paramref name="now"/>; returns the count so far and when that window ends.</summary>
    public static async Task<(long Count, DateTimeOffset WindowEnds)> CountAsync(IDatabase db, string prefix, string subject, TimeSpan window, DateTimeOffset now)
    {
        var index = WindowOf(now, window);
        var count = await IncrementAsync(db, Key(prefix, subject, index), window);
        return (count, DateTimeOffset.FromUnixTimeSeconds((index + 1) * (long)window.TotalSeconds));
    }

    /// <summary>The number of the window holding <paramref name="now"/>.</summary>
    public static long WindowOf(DateTimeOffset now, TimeSpan window) => now.ToUnixTimeSeconds() / (long)window.TotalSeconds;

    /// <summary>The counter of <paramref name="subject"/> in window <paramref name="index"/>: <c>{prefix}{subject}:{index}</c>.</summary>
    public static string Key(string prefix, string subject, long index) => string.Create(CultureInfo.InvariantCulture, $"{prefix}{subject}:{index}");

    /// <summary>Adds one to a window's counter (which then expires with its window); returns the new count.</summary>
    public static async Task<long> IncrementAsync(IDatabase db, string key, TimeSpan window)
    {
        ArgumentNullException.ThrowIfNull(db);
        var count = await db.StringIncrementAsync(key);
        if (count == 1)
        {
            await db.KeyExpireAsync(key, window);
        }
        return count;
    }
}
