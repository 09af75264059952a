namespace ClippyBot.Contracts;

/// <summary>The contract between Identity (which puts the role in access tokens) and resource servers (which require it).</summary>
public static class PlatformRoles
{
    /// <summary>
    /// <c>role</c> claim of a platform administrator (Identity's <c>identity-admin</c> role or a configured, verified
    /// administrator address): may use the Api's containment endpoints across all workspaces.
    /// </summary>
    public const string Administrator = "platform-admin";

    /// <summary><c>role</c> claim of a community registry reviewer (Identity's <c>plugin-reviewer</c> role).</summary>
    public const string PluginReviewer = "plugin-reviewer";
}
