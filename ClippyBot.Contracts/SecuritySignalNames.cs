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

    /// <summary>An entry of the Api's audit chains: <c>audit:{action}:{outcome}</c> (subject: the actor).</summary>
    public static string Audit(string action, string outcome) => $"audit:{action}:{outcome}";

    /// <summary>The name a rule uses: <c>{source}:{name}</c>.</summary>
    public static string Qualified(string source, string name) => $"{source}:{name}";
}
