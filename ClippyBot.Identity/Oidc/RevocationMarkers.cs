using StackExchange.Redis;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// Contract with resource servers: Redis key <c>clippybot:revoked-before:{sub}</c> holds a Unix time in seconds; an
/// access token for that subject whose <c>iat</c> is earlier must be refused. The key outlives every access token
/// issued before it (lifetime + 5 minutes) and then expires by itself. Only a user id and a time — nothing secret.
/// </summary>
public sealed class RevocationMarkers(IConnectionMultiplexer redis, TimeProvider time, Microsoft.Extensions.Options.IOptions<OidcOptions> options)
{
    public const string KeyPrefix = "clippybot:revoked-before:";

    public async Task PublishAsync(string subject)
    {
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var ttl = options.Value.AccessTokenLifetime + TimeSpan.FromMinutes(5);
        await redis.GetDatabase().StringSetAsync(KeyPrefix + subject, now, ttl);
    }
}
