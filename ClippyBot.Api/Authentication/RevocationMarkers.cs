using System.Security.Claims;
using ClippyBot.ServiceDefaults;
using StackExchange.Redis;

namespace ClippyBot.Api.Authentication;

/// <summary>
/// Reads the revocation markers Identity publishes (docs/revocation.md): one Redis round trip (MGET of two keys) per
/// request, no database query. The Api publishes one itself only when a person erases their account, so their tokens stop
/// working here at once even while Identity cannot be reached.
/// </summary>
public sealed class RevocationMarkers(IConnectionMultiplexer redis, TimeProvider time)
{
    /// <summary>Outlives any access token (15 minutes) with room for a longer configured lifetime.</summary>
    private static readonly TimeSpan MarkerLifetime = TimeSpan.FromHours(1);

    public Task PublishAsync(string subject) =>
        redis.GetDatabase().StringSetAsync(RevocationKeys.RevokedBefore(subject), time.GetUtcNow().ToUnixTimeSeconds(), MarkerLifetime);

    /// <summary>True when the token was issued before its subject's revocation time or its session was ended.</summary>
    /// <exception cref="RedisException">Redis cannot answer; the caller fails closed.</exception>
    public async Task<bool> IsRevokedAsync(ClaimsPrincipal principal)
    {
        ArgumentNullException.ThrowIfNull(principal);
        var subject = principal.FindFirstValue("sub");
        if (subject is null || !long.TryParse(principal.FindFirstValue("iat"), out var issuedAt))
        {
            return true; // not a token Identity issued for a subject
        }
        var sessionId = principal.FindFirstValue("sid");
        var values = await redis.GetDatabase().StringGetAsync(
            [RevocationKeys.RevokedBefore(subject), RevocationKeys.RevokedSession(sessionId ?? "none")]);
        var revokedBefore = values[0];
        // iat has whole seconds: a token from the event's own second may predate the event, so it is refused too (see docs/revocation.md).
        return (revokedBefore.HasValue && long.TryParse(revokedBefore.ToString(), out var marker) && issuedAt <= marker)
            || (sessionId is not null && values[1].HasValue);
    }
}
