namespace ClippyBot.Contracts;

/// <summary>
/// The permissions a plugin's manifest may ask for: the bundle format validates them, the Api shows and records the
/// workspace's consent to them, the PluginHost grants host functions by them. One spelling for all three.
/// </summary>
public static class PluginPermissions
{
    public const string MessagesRead = "messages:read";
    public const string MessagesSend = "messages:send";
    public const string StorageKv = "storage:kv";
    public const string HttpFetch = "http:fetch";
    public const string SecretsRead = "secrets:read";
    public const string OAuthUse = "oauth:use";
}
