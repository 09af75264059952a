using System.Text.RegularExpressions;
using ClippyBot.Contracts;

namespace ClippyBot.Api.Detection;

/// <summary>
/// One alert rule: fires when its signals' count over the last <see cref="WindowMinutes"/> exceeds <see cref="Threshold"/>
/// (and, with <see cref="BaselineFactor"/>, that many times the usual count of such a window over the hour before), either
/// platform-wide or per subject (<see cref="PerSubject"/>: an account, a caller, a plugin in a workspace).
/// </summary>
public sealed class AlertRule
{
    /// <summary>Qualified signal names (<c>{source}:{name}</c>, see <see cref="SecuritySignalNames"/>), summed.</summary>
    public string[] Signals { get; set; } = [];

    /// <summary>Fires when the count is above this (0: any occurrence).</summary>
    public long Threshold { get; set; }

    public int WindowMinutes { get; set; } = 5;

    /// <summary>Counts each subject on its own (one alert per subject) instead of the platform-wide total.</summary>
    public bool PerSubject { get; set; }

    /// <summary>When above zero (platform-wide rules), the count must also exceed this many times the mean count of a window over the hour before.</summary>
    public double BaselineFactor { get; set; }

    /// <summary><c>info</c>, <c>low</c>, <c>medium</c>, <c>high</c> or <c>critical</c>.</summary>
    public string Severity { get; set; } = "medium";

    public string Description { get; set; } = "";

    public bool Enabled { get; set; } = true;

    /// <summary>An episode ends after this many quiet minutes (default: the window); a later firing is a new alert.</summary>
    public int? QuietMinutes { get; set; }

    public TimeSpan Window => TimeSpan.FromMinutes(WindowMinutes);

    public TimeSpan Quiet => TimeSpan.FromMinutes(QuietMinutes ?? WindowMinutes);
}

/// <summary>Configuration section <c>Detection</c>: the rules (defaults below, each overridable by name); <c>Detection:EvaluationInterval</c> sets the cadence.</summary>
public sealed partial class DetectionOptions
{
    public const string SectionName = "Detection";
    public const int MaxWindowMinutes = 60;
    public static readonly string[] Severities = ["info", "low", "medium", "high", "critical"];

    /// <summary>How long resolved alerts are kept (those linked to an incident stay with it).</summary>
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(90);

    /// <summary>Where the alert mails link to (the Api's public address); empty: no link.</summary>
    public string PublicBaseUrl { get; set; } = "";

    public Dictionary<string, AlertRule> Rules { get; } = Defaults();

    /// <summary>Safe defaults: quiet on normal traffic, loud on what an attack or a compromised administrator looks like.</summary>
    public static Dictionary<string, AlertRule> Defaults() => new(StringComparer.Ordinal)
    {
        ["sign-in-failures"] = new()
        {
            Signals = [Identity(SecuritySignalNames.SignInFailed)], Threshold = 50, WindowMinutes = 5, BaselineFactor = 3, Severity = "high",
            Description = "Failed sign-ins across the platform far above the usual rate (credential stuffing, password spraying).",
        },
        ["account-sign-in-failures"] = new()
        {
            Signals = [Identity(SecuritySignalNames.SignInFailed)], Threshold = 10, WindowMinutes = 15, PerSubject = true, Severity = "medium",
            Description = "Many failed sign-ins against one account (a guessing attack on it; unknown-account: guesses at addresses).",
        },
        ["token-throttle-blocks"] = new()
        {
            Signals = [Identity(SecuritySignalNames.TokenThrottled)], Threshold = 0, WindowMinutes = 10, PerSubject = true, Severity = "medium",
            Description = "The token endpoint blocked an address after repeated failures (client-secret or refresh-token guessing).",
        },
        ["rate-limit-refusals"] = new()
        {
            Signals = [Qualified("api", SecuritySignalNames.RateLimited), Identity(SecuritySignalNames.RateLimited), Qualified("registry", SecuritySignalNames.RateLimited)],
            Threshold = 200, WindowMinutes = 5, PerSubject = true, Severity = "low",
            Description = "One caller keeps hitting the rate limits (a scraper, a runaway integration, a flood).",
        },
        ["plugin-quarantines"] = new()
        {
            Signals = [Api(SecuritySignalNames.PluginQuarantined)], Threshold = 0, WindowMinutes = 10, PerSubject = true, Severity = "high",
            Description = "A plugin version was quarantined (by a rule: crashes, limits or a permission violation; or by a person).",
        },
        ["plugin-permission-violations"] = new()
        {
            Signals = [Api(SecuritySignalNames.PluginPermissionViolation)], Threshold = 0, WindowMinutes = 10, PerSubject = true, Severity = "high",
            Description = "A plugin attempted a capability its workspace did not grant.",
        },
        ["administrator-without-mfa"] = new()
        {
            Signals = [Identity(SecuritySignalNames.AdministratorWithoutMfa)], Threshold = 0, WindowMinutes = 10, PerSubject = true, Severity = "high",
            Description = "An administrator's session without a second factor reached for administration (a stolen password?).",
        },
        ["administration-refused"] = new()
        {
            Signals = [Api(SecuritySignalNames.AdministrationRefused)], Threshold = 0, WindowMinutes = 10, PerSubject = true, Severity = "medium",
            Description = "A signed-in caller was refused platform administration (no role, no second factor, or a client without the scope).",
        },
        ["mass-erasures"] = new()
        {
            Signals = [Api(SecuritySignalNames.Audit("account.erased", "success"))], Threshold = 10, WindowMinutes = 10, Severity = "high",
            Description = "More account erasures than usual in a short time.",
        },
        ["mass-key-revocations"] = new()
        {
            Signals = [Api(SecuritySignalNames.Audit("api_key.revoked", "success")), Api(SecuritySignalNames.Audit("api_key.disabled_by_platform", "success"))],
            Threshold = 20, WindowMinutes = 10, Severity = "high",
            Description = "Many API keys revoked or disabled in a short time.",
        },
        ["mass-role-changes"] = new()
        {
            Signals = [Api(SecuritySignalNames.Audit("member.role_changed", "success"))], Threshold = 20, WindowMinutes = 10, Severity = "high",
            Description = "Many workspace role changes in a short time (a takeover escalating, or a script gone wrong).",
        },
        ["breach-notification-overdue"] = new()
        {
            Signals = [Api(SecuritySignalNames.BreachNotificationOverdue)], Threshold = 0, WindowMinutes = 5, PerSubject = true, Severity = "critical",
            Description = "An incident affected personal data more than 72 hours ago and the affected people have not been notified.",
        },
        ["backup-failures"] = new()
        {
            Signals = [Qualified("apphost", SecuritySignalNames.BackupFailed)], Threshold = 0, WindowMinutes = 60, PerSubject = true, Severity = "high",
            Description = "A backup of a cluster failed (the next scheduled one retries; the recovery point ages meanwhile).",
        },
        ["restore-drill-failures"] = new()
        {
            Signals = [Qualified("apphost", SecuritySignalNames.RestoreDrillFailed)], Threshold = 0, WindowMinutes = 60, PerSubject = true, Severity = "critical",
            Description = "A restore drill failed: the backups of this cluster could not be restored as they are.",
        },
        ["backup-archive-lag"] = new()
        {
            Signals = [Qualified("apphost", SecuritySignalNames.ArchiveLagging)], Threshold = 0, WindowMinutes = 10, PerSubject = true, Severity = "critical",
            Description = "The WAL archive lags behind the recovery-point promise (more than 3 minutes of commits at risk).",
        },
        ["signing-key-rotation"] = new()
        {
            Signals = [Api(SecuritySignalNames.Audit("oidc.signing_keys_rotated", "success"))], Threshold = 0, WindowMinutes = 10, Severity = "info",
            Description = "Identity's token-signing keys were rotated by hand.",
        },
        ["encryption-key-rotation"] = new()
        {
            Signals = [Api(SecuritySignalNames.Audit("encryption.key_rotated", "success"))], Threshold = 0, WindowMinutes = 10, Severity = "info",
            Description = "A workspace's data-encryption key was rotated.",
        },
    };

    private static string Identity(string name) => SecuritySignalNames.Qualified("identity", name);

    private static string Api(string name) => SecuritySignalNames.Qualified("api", name);

    private static string Qualified(string source, string name) => SecuritySignalNames.Qualified(source, name);

    /// <summary>Binds <c>Detection</c>: a rule named in configuration overrides the default of that name (its listed
    /// signals replace the default's), or adds a rule.</summary>
    public void Bind(IConfigurationSection section)
    {
        ArgumentNullException.ThrowIfNull(section);
        PublicBaseUrl = section["PublicBaseUrl"] ?? PublicBaseUrl;
        if (section["Retention"] is { } retention)
        {
            Retention = TimeSpan.Parse(retention, System.Globalization.CultureInfo.InvariantCulture);
        }
        foreach (var child in section.GetSection("Rules").GetChildren())
        {
            var rule = Rules.GetValueOrDefault(child.Key) ?? new AlertRule();
            if (child.GetSection(nameof(AlertRule.Signals)).Exists())
            {
                rule.Signals = [];
            }
            child.Bind(rule);
            Rules[child.Key] = rule;
        }
    }

    /// <summary>Why the rules cannot run, or null.</summary>
    public string? Problem()
    {
        if (Retention < TimeSpan.FromDays(1))
        {
            return "Detection:Retention must be at least a day.";
        }
        foreach (var (name, rule) in Rules)
        {
            if (!RuleName().IsMatch(name))
            {
                return $"Detection rule name '{name}' must be lower-case letters, digits and dashes (at most 64).";
            }
            if (rule.Signals.Length == 0 || rule.Signals.Any(s => !SignalName().IsMatch(s)))
            {
                return $"Detection rule '{name}' needs signals named source:name.";
            }
            if (rule.Threshold < 0 || rule.WindowMinutes is < 1 or > MaxWindowMinutes || rule.QuietMinutes is < 1 or > MaxWindowMinutes
                || rule.BaselineFactor < 0 || (rule.BaselineFactor > 0 && rule.PerSubject) || !Severities.Contains(rule.Severity, StringComparer.Ordinal) || rule.Description.Length > 300)
            {
                return $"Detection rule '{name}' needs Threshold ≥ 0, WindowMinutes and QuietMinutes 1–{MaxWindowMinutes}, BaselineFactor ≥ 0 (platform-wide rules only), "
                       + $"Severity one of {string.Join(", ", Severities)}, and a Description of at most 300 characters.";
            }
        }
        return null;
    }

    [GeneratedRegex("^[a-z0-9-]{1,64}$")]
    private static partial Regex RuleName();

    [GeneratedRegex("^[a-z]+:[a-z0-9_.:-]{1,150}$")]
    private static partial Regex SignalName();
}
