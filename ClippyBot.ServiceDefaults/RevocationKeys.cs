namespace ClippyBot.ServiceDefaults;

/// <summary>
/// The Redis keys of the revocation contract (docs/revocation.md), in one place for the publisher (Identity) and the
/// readers (resource servers):
/// <list type="bullet">
/// <item><see cref="RevokedBefore"/>: a Unix time in seconds; an access token for that subject whose <c>iat</c> is earlier
/// must be refused (password change, reset, logout everywhere, administrator revoke).</item>
/// <item><see cref="RevokedSession"/>: exists once one session has been ended; access tokens whose <c>sid</c> names it
/// must be refused.</item>
/// </list>
/// Both keys outlive every access token issued before them and then expire by themselves; they hold only ids and a time.
/// </summary>
public static class RevocationKeys
{
    public const string RevokedBeforePrefix = "clippybot:revoked-before:";
    public const string RevokedSessionPrefix = "clippybot:revoked-session:";

    public static string RevokedBefore(string subject) => RevokedBeforePrefix + subject;

    public static string RevokedSession(string sessionId) => RevokedSessionPrefix + sessionId;
}
