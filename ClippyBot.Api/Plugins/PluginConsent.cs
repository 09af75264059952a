using ClippyBot.Contracts;
using System.Text.Json;

namespace ClippyBot.Api.Plugins;

/// <summary>A permission as the catalog shows it and a workspace consents to it: its name and every parameter.</summary>
public sealed record PermissionRequest(string Name, IReadOnlyDictionary<string, JsonElement>? Parameters);

/// <summary>
/// What a workspace consented to, and whether a newer version stays within it. An update whose permissions and
/// parameters are the same or narrower is adopted without asking; anything wider waits for an owner or admin.
/// </summary>
public static class PluginConsent
{
    /// <summary>The consent kept for <paramref name="plugin"/>; rows from before parameters were kept fall back to the names
    /// (and providers and secrets), so any host list or quota counts as wider.</summary>
    public static IReadOnlyList<PermissionRequest> Of(WorkspacePlugin plugin)
    {
        ArgumentNullException.ThrowIfNull(plugin);
        if (JsonSerializer.Deserialize<List<PermissionRequest>>(plugin.ConsentedPermissionsJson, JsonSerializerOptions.Web) is { Count: > 0 } kept)
        {
            return kept;
        }
        return [.. plugin.GrantedPermissions.Select(name => new PermissionRequest(name, name switch
        {
            PluginPermissions.OAuthUse => new Dictionary<string, JsonElement> { ["providers"] = JsonSerializer.SerializeToElement(plugin.GrantedOAuthProviders) },
            PluginPermissions.SecretsRead => new Dictionary<string, JsonElement> { ["names"] = JsonSerializer.SerializeToElement(plugin.GrantedSecretNames) },
            _ => null,
        }))];
    }

    public static string Serialize(IReadOnlyList<PermissionRequest> requests) => JsonSerializer.Serialize(requests, JsonSerializerOptions.Web);

    /// <summary>
    /// True when every permission of <paramref name="candidate"/> was consented with parameters at least as wide: list
    /// parameters (hosts, providers, secret names) a subset, numbers (kv quota) no larger, anything else identical. A
    /// parameter present on only one side counts as wider (a missing quota means the host's default, which may be larger).
    /// </summary>
    public static bool IsWithin(IReadOnlyList<PermissionRequest> candidate, IReadOnlyList<PermissionRequest> consented)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(consented);
        foreach (var permission in candidate)
        {
            if (consented.FirstOrDefault(c => c.Name == permission.Name) is not { } granted)
            {
                return false;
            }
            var asked = permission.Parameters ?? new Dictionary<string, JsonElement>();
            var allowed = granted.Parameters ?? new Dictionary<string, JsonElement>();
            if (asked.Keys.Any(k => !allowed.ContainsKey(k)) || allowed.Keys.Any(k => !asked.ContainsKey(k)))
            {
                return false;
            }
            foreach (var (name, value) in asked)
            {
                if (!ParameterWithin(name, value, allowed[name]))
                {
                    return false;
                }
            }
        }
        return true;
    }

    private static bool ParameterWithin(string name, JsonElement asked, JsonElement allowed)
    {
        // Host names are case-insensitive; secret names and providers are not.
        var comparer = name == "hosts" ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;
        return (asked.ValueKind, allowed.ValueKind) switch
        {
            (JsonValueKind.Array, JsonValueKind.Array) => asked.EnumerateArray().All(a =>
                allowed.EnumerateArray().Any(b => a.ValueKind == JsonValueKind.String && b.ValueKind == JsonValueKind.String
                    ? comparer.Equals(a.GetString(), b.GetString())
                    : JsonElement.DeepEquals(a, b))),
            // Numbers (the kv quota) only as positive whole numbers; anything else could mean "the default" to the host.
            (JsonValueKind.Number, JsonValueKind.Number) => asked.TryGetInt64(out var a) && allowed.TryGetInt64(out var b) && a >= 1 && a <= b,
            _ => JsonElement.DeepEquals(asked, allowed),
        };
    }
}
