namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// Least privilege in Redis (redis-server 7 ACL users): each service connects as its own user, limited to the keys and
/// channels its job needs; the default user is off; only <c>admin</c> (the AppHost's health check) has everything. No
/// service may run dangerous commands (FLUSHALL, CONFIG, KEYS, DEBUG, ACL…). Garnet has no key patterns in its ACL, so
/// with Garnet every service shares one password (see LocalRedisResources).
/// </summary>
public static class RedisUsers
{
    public const string Admin = "admin";

    /// <summary>Key and channel rules per service (redis ACL syntax). Markers: only Identity writes them; the Api reads them
    /// (and may announce on the channel, which can only end tokens); the PluginHost never touches them.</summary>
    public static readonly IReadOnlyDictionary<string, string> Rules = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["identity"] = "~clippybot:revoked-* ~clippybot:login-attempts:* ~clippybot:token-failures:* ~clippybot:token-blocked:* "
                       + "~clippybot:registrations:* ~clippybot:account-exists-mailed:* ~clippybot:oidc-* ~clippybot:identity:* "
                       + "&clippybot:revocations &clippybot:login-attempts &clippybot:identity:* &clippybot:oidc-*",
        ["api"] = "~clippybot:rl:* ~clippybot:api:* %R~clippybot:revoked-* &clippybot:revocations &clippybot:api:*",
        ["pluginhost"] = "~clippybot:pluginhost:* &clippybot:pluginhost:*",
    };

    /// <summary>Commands every service user gets: everything but the dangerous ones (and INFO back, which the client reads
    /// at connect; CONFIG stays out — it would reveal passwords).</summary>
    private const string Commands = "+@all -@dangerous +info";

    /// <summary>The ACL lines for a redis.conf: <paramref name="passwords"/> has one per user in <see cref="Rules"/> plus <see cref="Admin"/>.</summary>
    public static string Acl(IReadOnlyDictionary<string, string> passwords)
    {
        ArgumentNullException.ThrowIfNull(passwords);
        var lines = new List<string> { "user default off", $"user {Admin} on >{passwords[Admin]} ~* &* +@all" };
        foreach (var (user, rules) in Rules)
        {
            var line = $"user {user} on >{passwords[user]} resetchannels {rules} {Commands}";
            if (user == "pluginhost")
            {
                // Key patterns do not limit SCAN/RANDOMKEY/PUBSUB, which would list every key and channel name (client
                // addresses, user and session ids); the service that runs third-party code needs none of them.
                line += " -scan -randomkey -pubsub";
            }
            lines.Add(line);
        }
        return string.Join('\n', lines) + "\n";
    }
}
