using System.Text.RegularExpressions;

namespace ClippyBot.Contracts;

/// <summary>
/// The contract between the Api (which stores workspace secrets by name) and the PluginHost (whose manifests name the
/// secrets a plugin reads): one rule, so a manifest can never name a secret the Api would refuse to store.
/// </summary>
public static partial class WorkspaceSecretNames
{
    /// <summary>What a refused name is told: 1–64 letters, digits, '_', '.' or '-', starting with a letter or digit.</summary>
    public const string Rule = "1–64 letters, digits, '_', '.' or '-', starting with a letter or digit";

    public static bool IsValid(string? name) => name is not null && Pattern().IsMatch(name);

    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    private static partial Regex Pattern();
}
