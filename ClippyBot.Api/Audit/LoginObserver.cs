using System.Security.Claims;
using Microsoft.Extensions.Caching.Memory;
using StackExchange.Redis;

namespace ClippyBot.Api.Audit;

/// <summary>
/// Logins as the Api sees them: the first request carrying a new Identity session (<c>sid</c>) is written to the platform
/// audit chain as <c>login.seen</c> (who, when, from where). Each replica remembers sessions it has seen; Redis
/// (<c>SET NX</c>) makes the record happen once across replicas. Later requests of the session cost a memory lookup.
/// </summary>
public sealed class LoginObserver(IConnectionMultiplexer redis, TimeProvider time) : IDisposable
{
    private readonly MemoryCache _seen = new(new MemoryCacheOptions { SizeLimit = 100_000 });

    public async Task ObserveAsync(HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var sid = context.User.FindFirstValue("sid");
        if (sid is null || _seen.TryGetValue(sid, out _))
        {
            return;
        }
        var expires = long.TryParse(context.User.FindFirstValue("exp"), out var exp) ? DateTimeOffset.FromUnixTimeSeconds(exp) : time.GetUtcNow().AddMinutes(15);
        var lifetime = expires - time.GetUtcNow() + TimeSpan.FromMinutes(1);
        if (lifetime <= TimeSpan.Zero)
        {
            return;
        }
        bool first;
        try
        {
            // A refreshed token keeps its sid, so a session is recorded once however long it lives (a login lasts ≤ 30 days).
            first = await redis.GetDatabase().StringSetAsync($"clippybot:api:login-seen:{sid}", "1", TimeSpan.FromDays(31), When.NotExists);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return; // not remembered locally: the next request of the session tries again
        }
        if (first)
        {
            await context.RequestServices.GetRequiredService<AuditLog>().RecordAsync(null, "login.seen", sid, ct: context.RequestAborted);
        }
        _seen.Set(sid, true, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = lifetime });
    }

    public void Dispose() => _seen.Dispose();
}
