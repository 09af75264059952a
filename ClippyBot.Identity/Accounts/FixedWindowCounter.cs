using StackExchange.Redis;

namespace ClippyBot.Identity.Accounts;

/// <summary>A per-subject event counter in Redis over fixed windows (shared by replicas): the basis of Identity's throttles.</summary>
public static class FixedWindowCounter
{
    /// <summary>Counts one event of <paramref name="subject"/> in the window holding <paramref name="now"/>; returns the count so far and when that window ends.</summary>
    public static async Task<(long Count, DateTimeOffset WindowEnds)> CountAsync(IDatabase db, string prefix, string subject, TimeSpan window, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(db);
        var length = (long)window.TotalSeconds;
        var index = now.ToUnixTimeSeconds() / length;
        var key = $"{prefix}{subject}:{index}";
        var count = await db.StringIncrementAsync(key);
        if (count == 1)
        {
            await db.KeyExpireAsync(key, window);
        }
        return (count, DateTimeOffset.FromUnixTimeSeconds((index + 1) * length));
    }
}
