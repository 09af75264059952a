namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// Least privilege in the cache: each service that uses it connects as its own ACL user; the default user is off; only
/// <c>admin</c> (the AppHost's health check) has everything. No service may run dangerous commands (FLUSHALL, CONFIG, KEYS,
/// DEBUG, ACL…). redis-server 7 also limits each user to its keys and channels; Garnet 2.2.8's ACL has no key or channel
/// patterns (<c>Unknown operation '~…'</c>), so there the users differ only by name and commands. The PluginHost, which runs
/// third-party code, has no user at all: it announces plugin-state changes through its own database.
/// </summary>
public static class RedisUsers
{
    public const string Admin = "admin";

    /// <summary>Key and channel rules per service (redis ACL syntax). Markers: only Identity writes them; the Api reads them
    /// (and may announce on the channel, which can only end tokens).</summary>
    public static readonly IReadOnlyDictionary<string, string> Rules = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["identity"] = "~clippybot:revoked-* ~clippybot:login-attempts:* ~clippybot:token-failures:* ~clippybot:token-blocked:* "
                       + "~clippybot:registrations:* ~clippybot:account-exists-mailed:* ~clippybot:oidc-* ~clippybot:identity:* "
                       + "~clippybot:signals:identity:* &clippybot:revocations &clippybot:login-attempts &clippybot:identity:* &clippybot:oidc-*",
        // Signals: each service writes its own; the Api, which evaluates the alert rules, reads them all.
        ["api"] = "~clippybot:rl:* ~clippybot:api:* ~clippybot:signals:api:* %R~clippybot:revoked-* %R~clippybot:signals:* &clippybot:revocations &clippybot:api:*",
        // The registry counts its rate limits and its signals and nothing else: no marker, no other service's key, no channel.
        ["registry"] = "~clippybot:registry:* ~clippybot:signals:registry:*",
        // The AppHost itself, for the backups' signals (BackupSignals): those keys and nothing else.
        ["apphost"] = "~clippybot:signals:apphost:*",
    };

    /// <summary>Commands every service user gets: everything but the dangerous ones (and INFO back, which the client reads
    /// at connect; CONFIG stays out — it would reveal passwords).</summary>
    private const string Commands = "+@all -@dangerous +info";

    /// <summary>
    /// Users that need only a few commands get only those: the registry counts (INCRBY, EXPIRE), records a refusal once a
    /// minute (SET NX), raises security signals (HINCRBY, LPUSH, LTRIM) and answers health checks (PING) — no SCAN or RANDOMKEY, which ignore key patterns and would show
    /// it other services' key names. The rest are what the client sends when it connects.
    /// </summary>
    private static readonly IReadOnlyDictionary<string, string> NarrowCommands = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["registry"] = "-@all +incrby +incr +expire +pexpire +set +get +hincrby +lpush +ltrim +ping +echo +info +hello +auth +client|setname +client|id +select",
        ["apphost"] = "-@all +hincrby +lpush +ltrim +expire +pexpire +ping +echo +info +hello +auth +client|setname +client|id +select",
    };

    /// <summary>redis-server's ACL lines: <paramref name="passwords"/> has one per user in <see cref="Rules"/> plus <see cref="Admin"/>.</summary>
    public static string Acl(IReadOnlyDictionary<string, string> passwords) =>
        Lines(passwords, user => $"resetchannels {Rules[user]} {NarrowCommands.GetValueOrDefault(user, Commands)}", "~* &* +@all");

    /// <summary>
    /// Garnet's ACL file: the same users and commands, every key and channel (Garnet has no key or channel patterns, so
    /// there the Api could also write Identity's throttle keys or publish on its channels: docs/revocation.md). Garnet
    /// files some administrative commands (COMMITAOF, the CLUSTER family…) under @admin but not @dangerous: both are off.
    /// </summary>
    public static string GarnetAcl(IReadOnlyDictionary<string, string> passwords) =>
        Lines(passwords, _ => "+@all -@dangerous -@admin +info ~*", "+@all ~*");

    private static string Lines(IReadOnlyDictionary<string, string> passwords, Func<string, string> rights, string adminRights)
    {
        ArgumentNullException.ThrowIfNull(passwords);
        var lines = new List<string> { "user default off", $"user {Admin} on >{passwords[Admin]} {adminRights}" };
        lines.AddRange(Rules.Keys.Select(user => $"user {user} on >{passwords[user]} {rights(user)}"));
        return string.Join('\n', lines) + "\n";
    }
}
