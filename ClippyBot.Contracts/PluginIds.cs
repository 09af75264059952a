using System.Text.RegularExpressions;

namespace ClippyBot.Contracts;

/// <summary>
/// What a plugin id looks like (bundle manifests, the Api, the PluginHost): lowercase letters, digits, dots and hyphens,
/// 3 to 100 characters, starting and ending with a letter or digit. Anything else names no plugin, so a service can answer
/// "no such plugin" without asking another.
/// </summary>
public static partial class PluginIds
{
    public static bool IsValid(string? id) => id is not null && Pattern().IsMatch(id);

    [GeneratedRegex("^[a-z0-9][a-z0-9.-]{1,98}[a-z0-9]$")]
    private static partial Regex Pattern();
}

/// <summary>Who set a quarantine, when a PluginHost rule did (the Api's alert rules tell violations from other causes by it).</summary>
public static class QuarantineRules
{
    public const string PermissionViolation = "rule:permission-violation";
    public const string FailureRate = "rule:failure-rate";
}
