namespace ClippyBot.Api.Plugins;

/// <summary>
/// A plugin installed in a workspace: the permissions an owner or admin saw and accepted (the consent, with who and when),
/// and the workspace's configuration for it.
/// </summary>
public sealed class WorkspacePlugin
{
    public Guid WorkspaceId { get; set; }

    public required string PluginId { get; set; }

    /// <summary>The version that runs: the one whose permissions were accepted, or a later one that asks for no more
    /// (adopted automatically). A newer version asking for more waits for consent again.</summary>
    public required string ConsentedVersion { get; set; }

    /// <summary>Every consented permission with its parameters (hosts, providers, secret names, kv quota), as shown (JSON).</summary>
    public string ConsentedPermissionsJson { get; set; } = "[]";

    public List<string> GrantedPermissions { get; set; } = [];

    /// <summary>With <c>oauth:use</c>: the providers whose workspace connection the plugin may use (part of the consent).</summary>
    public List<string> GrantedOAuthProviders { get; set; } = [];

    /// <summary>With <c>secrets:read</c>: the workspace secrets, by name, the plugin may read (part of the consent).</summary>
    public List<string> GrantedSecretNames { get; set; } = [];

    public string ConfigurationJson { get; set; } = "{}";

    public required string InstalledBy { get; set; }

    public DateTimeOffset InstalledAt { get; set; }
}
