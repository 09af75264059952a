namespace ClippyBot.Contracts;

/// <summary>
/// The security signals services raise for the Api's alert rules. A service raises a signal by its local name; it is
/// counted as <c>{source}:{name}</c> (the raising service: <c>identity</c>, <c>api</c>, <c>registry</c>), and a rule
/// names the qualified form, so a service can only ever count its own signals (its Redis user writes only its own keys).
/// </summary>
public static class SecuritySignalNames
{
    /// <summary>A password, one-time code or recovery code refused at sign-in (subject: the account, or <c>unknown-account</c>).</summary>
    public const string SignInFailed = "signin.failed";

    /// <summary>An address blocked by the token endpoint's throttle after repeated failures (subject: the address).</summary>
    public const string TokenThrottled = "token.throttled";

    /// <summary>A request refused by a rate limit (subject: the caller — account, API key or client — or its address).</summary>
    public const string RateLimited = "ratelimit.refused";

    /// <summary>A person holding the platform-administrator role refused for lacking a second factor (subject: the account).</summary>
    public const string AdministratorWithoutMfa = "admin.without_mfa";

    /// <summary>A signed-in caller refused by the platform-administrator policy (subject: the account or client) — a person
    /// without the role, or an administrator whose session lacks the second factor (the role is only granted with it).</summary>
    public const string AdministrationRefused = "admin.refused";

    /// <summary>A plugin version quarantined by a rule or a person (subject: <c>{plugin}@{version}/{workspace or platform}</c>).</summary>
    public const string PluginQuarantined = "plugin.quarantined";

    /// <summary>A plugin attempted a capability its workspace did not grant (subject: <c>{plugin}@{version}/{workspace}</c>).</summary>
    public const string PluginPermissionViolation = "plugin.permission_violation";

    /// <summary>An incident with personal data affected whose 72 hours are up and nobody was notified (subject: the incident).</summary>
    public const string BreachNotificationOverdue = "incident.notification_overdue";

    /// <summary>A scheduled or requested backup failed (AppHost; subject: the cluster).</summary>
    public const string BackupFailed = "backup.failed";

    /// <summary>A restore drill failed (AppHost; subject: the cluster).</summary>
    public const string RestoreDrillFailed = "backup.drill_failed";

    /// <summary>The WAL archive lags behind the recovery-point promise (AppHost; subject: the cluster), raised at each observation.</summary>
    public const string ArchiveLagging = "backup.archive_lagging";

    /// <summary>An entry of the Api's audit chains: <c>audit:{action}:{outcome}</c> (subject: the actor).</summary>
    public static string Audit(string action, string outcome) => $"audit:{action}:{outcome}";

    /// <summary>The name a rule uses: <c>{source}:{name}</c>.</summary>
    public static string Qualified(string source, string name) => $"{source}:{name}";
}

/// <summary>
/// Where security signals live in Redis — one spelling for every writer (the services' <c>SecuritySignals</c>, the
/// AppHost's backup signals) and the Api's reader: per-minute hashes <c>{prefix}{signal}:{minute}</c> (field
/// <see cref="TotalField"/> the total, one field per subject) and a list of recent samples <c>{prefix}{signal}:samples</c>
/// holding <c>{ticks}|{subject}|{detail}</c>, both kept <see cref="Retention"/>.
/// </summary>
public static class SecuritySignalKeys
{
    public const string DefaultPrefix = "clippybot:signals:";
    public const string TotalField = "*";
    public const int SamplesKept = 50;

    public static readonly TimeSpan Bucket = TimeSpan.FromMinutes(1);

    /// <summary>The longest rule window plus the baseline hour.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromHours(2);

    public static long MinuteOf(DateTimeOffset at) => at.UtcTicks / Bucket.Ticks;

    public static string BucketKey(string prefix, string signal, long minute) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{prefix}{signal}:{minute}");

    public static string SamplesKey(string prefix, string signal) => $"{prefix}{signal}:samples";

    public static string Sample(DateTimeOffset at, string subject, string detail) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{at.UtcTicks}|{subject}|{detail}");
}
