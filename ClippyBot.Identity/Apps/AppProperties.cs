using System.Collections.Immutable;
using System.Text.Json;

namespace ClippyBot.Identity.Apps;

/// <summary>What ClippyBot keeps in an OpenIddict application's properties (read with the cached registration, no extra query).</summary>
public static class AppProperties
{
    /// <summary>"suspended" or "deleted": the client is not found at any endpoint.</summary>
    public const string Disabled = "clippybot_disabled";

    /// <summary>The keyed hash of the secret a rotation replaced, accepted until <see cref="PreviousSecretExpires"/>.</summary>
    public const string PreviousSecret = "clippybot_previous_secret";

    /// <summary>Unix seconds.</summary>
    public const string PreviousSecretExpires = "clippybot_previous_secret_expires";

    /// <summary>The replaced secret's hash while its grace period runs, else null.</summary>
    public static string? PreviousSecretIn(ImmutableDictionary<string, JsonElement> properties, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(properties);
        return properties.TryGetValue(PreviousSecret, out var hash) && hash.ValueKind == JsonValueKind.String
            && properties.TryGetValue(PreviousSecretExpires, out var expires) && expires.ValueKind == JsonValueKind.Number
            && DateTimeOffset.FromUnixTimeSeconds(expires.GetInt64()) > now
                ? hash.GetString()
                : null;
    }

    public static string? DisabledIn(ImmutableDictionary<string, JsonElement> properties) =>
        properties is not null && properties.TryGetValue(Disabled, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
