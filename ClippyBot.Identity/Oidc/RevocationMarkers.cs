using ClippyBot.ServiceDefaults;
using StackExchange.Redis;

namespace ClippyBot.Identity.Oidc;

/// <summary>Publishes the revocation markers of <see cref="RevocationKeys"/> for resource servers.</summary>
public sealed class RevocationMarkers(IConnectionMultiplexer redis, TimeProvider time, Microsoft.Extensions.Options.IOptions<OidcOptions> options)
{
    public Task PublishAsync(string subject) => SetMarkerAsync(RevocationKeys.RevokedBefore(subject));

    public Task PublishSessionAsync(string sessionId) => SetMarkerAsync(RevocationKeys.RevokedSession(sessionId));

    // Outlives every access token issued before the event, then expires by itself.
    private Task<bool> SetMarkerAsync(RedisKey key) =>
        redis.GetDatabase().StringSetAsync(key, time.GetUtcNow().ToUnixTimeSeconds(), options.Value.AccessTokenLifetime + TimeSpan.FromMinutes(5));
}
