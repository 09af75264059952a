using ClippyBot.Contracts;
namespace ClippyBot.Plugins.Sandbox;

/// <summary>
/// The host functions a plugin may import, all from module <c>clippybot</c> (docs/plugins/abi.md), and the permission
/// each needs. Only functions of permissions both requested by the manifest and granted by the workspace are linked.
/// </summary>
public static class HostAbi
{
    public const string Module = "clippybot";

    /// <summary>Function name → permission; null = always available (logging is harmless and bounded).</summary>
    public static readonly IReadOnlyDictionary<string, string?> Functions = new Dictionary<string, string?>(StringComparer.Ordinal)
    {
        ["log"] = null,
        ["send_message"] = PluginPermissions.MessagesSend,
        ["kv_get"] = PluginPermissions.StorageKv,
        ["kv_set"] = PluginPermissions.StorageKv,
        ["http_fetch"] = PluginPermissions.HttpFetch,
        ["secret_get"] = PluginPermissions.SecretsRead,
        ["oauth_token"] = PluginPermissions.OAuthUse,
    };
}
