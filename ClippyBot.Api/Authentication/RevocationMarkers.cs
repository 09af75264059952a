using System.Security.Claims;
using ClippyBot.ServiceDefaults;
using StackExchange.Redis;

namespace ClippyBot.Api.Authentication;

/// <summary>
/// Reads the revocation markers Identity publishes (docs/revocation.md): one Redis round trip (MGET of two keys) per
/// request, no database query.
/// </summary>
public sealed class RevocationMarkers(IConnectionMultiplexer redis)
{
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
