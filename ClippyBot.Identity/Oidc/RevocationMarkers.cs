using StackExchange.Redis;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// Contract with resource servers (documented in docs/revocation.md):
/// <list type="bullet">
/// <item><c>clippybot:revoked-before:{sub}</c> holds a Unix time in seconds; an access token for that subject whose
/// <c>iat</c> is earlier must be refused (password change, reset, logout everywhere, administrator revoke).</item>
/// <item><c>clippybot:revoked-session:{sid}</c> exists once one session has been ended; access tokens whose
/// <c>sid</c> claim names it must be refused.</item>
/// </list>
/// Both keys outlive every access token issued before them (lifetime + 5 minutes) and then expire by themselves.
/// They hold only ids and a time — nothing secret.
/// </summary>
public sealed class RevocationMarkers(IConnectionMultiplexer redis, TimeProvider time, Microsoft.Extensions.Options.IOptions<OidcOptions> options)
{
    public const string KeyPrefix = "clippybot:revoked-before:";
    public const string SessionKeyPrefix = "clippybot:revoked-session:";

    public async Task PublishAsync(string subject)
    {
        var now = time.GetUtcNow().ToUnixTimeSeconds();
        var ttl = options.Value.AccessTokenLifetime + TimeSpan.FromMinutes(5);
        await redis.GetDatabase().StringSetAsync(KeyPrefix + subject, now, ttl);
    }

    public async Task PublishSessionAsync(string sessionId)
    {
        var ttl = options.Value.AccessTokenLifetime + TimeSpan.FromMinutes(5);
        await redis.GetDatabase().StringSetAsync(SessionKeyPrefix + sessionId, time.GetUtcNow().ToUnixTimeSeconds(), ttl);
    }
}
