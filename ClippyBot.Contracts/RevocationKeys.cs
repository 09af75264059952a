namespace ClippyBot.Contracts;

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
    /// <summary>
    /// Every marker written is also announced here (message: <see cref="Announcement"/>), so a resource server can mirror
    /// the markers in memory instead of reading Redis on every request.
    /// </summary>
    public const string AnnouncementChannel = "clippybot:revocations";

    /// <summary>Matches every marker key (SCAN), for a mirror's initial load.</summary>
    public const string AllMarkersPattern = "clippybot:revoked-*";

    public const string RevokedBeforePrefix = "clippybot:revoked-before:";
    public const string RevokedSessionPrefix = "clippybot:revoked-session:";

    public static string RevokedBefore(string subject) => RevokedBeforePrefix + subject;

    /// <summary>The announcement of one marker: <c>key|value|lifetime in seconds</c>.</summary>
    public static string Announcement(string key, long value, TimeSpan lifetime) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{key}|{value}|{(long)Math.Ceiling(lifetime.TotalSeconds)}");

    public static bool TryParseAnnouncement(string message, out string key, out long value, out TimeSpan lifetime)
    {
        ArgumentNullException.ThrowIfNull(message);
        var parts = message.Split('|');
        key = parts[0];
        value = 0;
        lifetime = TimeSpan.Zero;
        if (parts.Length != 3 || !key.StartsWith("clippybot:revoked-", StringComparison.Ordinal)
            || !long.TryParse(parts[1], System.Globalization.CultureInfo.InvariantCulture, out value)
            || !long.TryParse(parts[2], System.Globalization.CultureInfo.InvariantCulture, out var seconds) || seconds <= 0)
        {
            return false;
        }
        lifetime = TimeSpan.FromSeconds(seconds);
        return true;
    }

    public static string RevokedSession(string sessionId) => RevokedSessionPrefix + sessionId;
}
