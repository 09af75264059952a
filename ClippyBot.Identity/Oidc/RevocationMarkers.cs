using ClippyBot.ServiceDefaults;
using StackExchange.Redis;

namespace ClippyBot.Identity.Oidc;

/// <summary>Publishes the revocation markers of <see cref="RevocationKeys"/> for resource servers.</summary>
public sealed class RevocationMarkers(IConnectionMultiplexer redis, TimeProvider time, Microsoft.Extensions.Options.IOptions<OidcOptions> options)
{
    public Task PublishAsync(string subject) => SetMarkerAsync(RevocationKeys.RevokedBefore(subject));

    public Task PublishSessionAsync(string sessionId) => SetMarkerAsync(RevocationKeys.RevokedSession(sessionId));

    /// <summary>
    /// Resource servers refuse a token whose <c>iat</c> is not later than the subject's marker (whole seconds). A token
    /// minted in the marker's own second would be refused for its whole life, so issuance right after a revocation waits
    /// for the next second — under a second, and only then; otherwise this is one Redis read.
    /// </summary>
    public async Task WaitUntilPastMarkerAsync(string subject, CancellationToken ct)
    {
        var value = await redis.GetDatabase().StringGetAsync(RevocationKeys.RevokedBefore(subject));
        if (value.HasValue && long.TryParse(value.ToString(), out var marker))
        {
            // A little past the boundary: timers may fire a hair early, and iat must land in the next second.
            var wait = DateTimeOffset.FromUnixTimeSeconds(marker + 1) + TimeSpan.FromMilliseconds(20) - time.GetUtcNow();
            if (wait > TimeSpan.Zero && wait <= TimeSpan.FromSeconds(2))
            {
                await Task.Delay(wait, time, ct);
            }
        }
    }

    // Outlives every access token issued before the event, then expires by itself; announced after it is stored, so a
    // mirror that hears the announcement can read it (docs/revocation.md).
    private async Task SetMarkerAsync(string key)
    {
        var value = time.GetUtcNow().ToUnixTimeSeconds();
        var lifetime = options.Value.AccessTokenLifetime + TimeSpan.FromMinutes(5);
        await redis.GetDatabase().StringSetAsync(key, value, lifetime);
        await redis.GetSubscriber().PublishAsync(RedisChannel.Literal(RevocationKeys.AnnouncementChannel), RevocationKeys.Announcement(key, value, lifetime));
    }
}
