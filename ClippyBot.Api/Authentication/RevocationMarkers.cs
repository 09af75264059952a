using System.Security.Claims;
using StackExchange.Redis;

namespace ClippyBot.Api.Authentication;

/// <summary>
/// Reads the revocation markers Identity publishes (docs/revocation.md): one Redis round trip (MGET of two keys) per
/// request, no database query.
/// </summary>
public sealed class RevocationMarkers(IConnectionMultiplexer redis)
{
    private const string RevokedBeforePrefix = "clippybot:revoked-before:";
    private const string RevokedSessionPrefix = "clippybot:revoked-session:";

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
            [RevokedBeforePrefix + subject, RevokedSessionPrefix + (sessionId ?? "none")]);
        var revokedBefore = values[0];
        return (revokedBefore.HasValue && long.TryParse(revokedBefore.ToString(), out var marker) && issuedAt < marker)
            || (sessionId is not null && values[1].HasValue);
    }
}
