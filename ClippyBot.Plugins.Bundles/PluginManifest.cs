using ClippyBot.Contracts;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace ClippyBot.Plugins.Bundles;

/// <summary>A plugin's <c>manifest.json</c> (schema: docs/plugins/bundle-format.md).</summary>
public sealed record PluginManifest(
    string Id,
    string Name,
    string Version,
    string Publisher,
    string Description,
    IReadOnlyList<EntryPoint> EntryPoints,
    IReadOnlyList<PermissionRequest> Permissions,
    ResourceRequest? Resources)
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        WriteIndented = true,
    };

    public SemVersion ParsedVersion => SemVersion.Parse(Version);

    /// <summary>The providers named by an <c>oauth:use</c> permission (empty without one).</summary>
    public IReadOnlyList<string> OAuthProviders => Names(PluginPermissions.OAuthUse, "providers");

    /// <summary>The workspace secrets named by a <c>secrets:read</c> permission (empty without one).</summary>
    public IReadOnlyList<string> SecretNames => Names(PluginPermissions.SecretsRead, "names");

    /// <summary>The hosts named by an <c>http:fetch</c> permission (empty without one).</summary>
    public IReadOnlyList<string> Hosts => Names(PluginPermissions.HttpFetch, "hosts");

    /// <summary>The storage quota a <c>storage:kv</c> permission asks for, if it names one.</summary>
    public long? RequestedKvQuotaBytes =>
        (Permissions ?? []).FirstOrDefault(p => p.Name == PluginPermissions.StorageKv)?.Parameters?.GetValueOrDefault("quotaBytes") is { ValueKind: JsonValueKind.Number } q
        && q.TryGetInt64(out var asked) && asked > 0 ? asked : null;

    private List<string> Names(string permission, string parameter) =>
        [.. (Permissions ?? []).Where(p => p.Name == permission)
            .SelectMany(p => p.Parameters?.GetValueOrDefault(parameter) is { ValueKind: JsonValueKind.Array } list
                ? list.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() : null).OfType<string>() : [])];
}

/// <summary>An exported function the host may call for an event (e.g. <c>on_message</c>).</summary>
public sealed record EntryPoint(string Event, string Export);

/// <summary>A capability with parameters, e.g. <c>http:fetch</c> with <c>hosts</c>, <c>storage:kv</c> with <c>quotaBytes</c>.</summary>
public sealed record PermissionRequest(string Name, IReadOnlyDictionary<string, JsonElement>? Parameters);

public sealed record ResourceRequest(int? MemoryMiB, long? Fuel, int? TimeoutMs);

/// <summary>One problem with a manifest, naming the field (JSON path) it is about.</summary>
public sealed record ManifestError(string Field, string Message)
{
    public override string ToString() => $"{Field}: {Message}";
}

public static partial class ManifestValidator
{
    public static readonly IReadOnlySet<string> KnownPermissions = new HashSet<string>(StringComparer.Ordinal)
    {
        PluginPermissions.MessagesRead, PluginPermissions.MessagesSend, PluginPermissions.StorageKv, PluginPermissions.HttpFetch, PluginPermissions.SecretsRead, PluginPermissions.OAuthUse,
    };

    public const int MaxManifestBytes = 64 * 1024;

    /// <summary>The largest kv quota a manifest may ask for (the sandbox may cap it lower).</summary>
    public const long MaxKvQuotaBytes = 16L * 1024 * 1024;

    /// <summary>Parses and validates; returns the manifest or every problem found, each naming its field.</summary>
    public static (PluginManifest? Manifest, IReadOnlyList<ManifestError> Errors) Parse(ReadOnlySpan<byte> json)
    {
        if (json.Length > MaxManifestBytes)
        {
            return (null, [new("$", $"The manifest is larger than {MaxManifestBytes} bytes.")]);
        }
        PluginManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<PluginManifest>(json, PluginManifest.Json);
        }
        catch (JsonException e)
        {
            return (null, [new(string.IsNullOrEmpty(e.Path) ? "$" : e.Path, e.Message.Split(" Path:")[0])]);
        }
        if (manifest is null)
        {
            return (null, [new("$", "The manifest is empty.")]);
        }
        var errors = Validate(manifest);
        return (errors.Count == 0 ? manifest : null, errors);
    }

    public static List<ManifestError> Validate(PluginManifest m)
    {
        ArgumentNullException.ThrowIfNull(m);
        var errors = new List<ManifestError>();
        if (!ClippyBot.Contracts.PluginIds.IsValid(m.Id))
        {
            errors.Add(new("$.id", "Use a reverse-DNS id of 3–100 lowercase letters, digits, '.', '-' (e.g. dev.clippybot.echo)."));
        }
        if (string.IsNullOrWhiteSpace(m.Name) || m.Name.Length > 100)
        {
            errors.Add(new("$.name", "Give a name of 1–100 characters."));
        }
        if (m.Version is null || !SemVersion.TryParse(m.Version, out _))
        {
            errors.Add(new("$.version", "Use a SemVer 2.0 version, e.g. 1.2.3 or 1.0.0-beta.1."));
        }
        if (string.IsNullOrWhiteSpace(m.Publisher) || m.Publisher.Length > 100)
        {
            errors.Add(new("$.publisher", "Name the publisher (1–100 characters)."));
        }
        if (m.Description is null || m.Description.Length > 2000)
        {
            errors.Add(new("$.description", "Describe the plugin (at most 2000 characters)."));
        }
        if (m.EntryPoints is null || m.EntryPoints.Count == 0)
        {
            errors.Add(new("$.entryPoints", "Declare at least one entry point."));
        }
        for (var i = 0; i < (m.EntryPoints?.Count ?? 0); i++)
        {
            var entry = m.EntryPoints![i];
            if (entry.Event is null || !Identifier().IsMatch(entry.Event))
            {
                errors.Add(new($"$.entryPoints[{i}].event", "Use a lowercase event name such as on_message."));
            }
            if (entry.Export is null || !Identifier().IsMatch(entry.Export))
            {
                errors.Add(new($"$.entryPoints[{i}].export", "Name the exported function (lowercase letters, digits, _)."));
            }
        }
        for (var i = 0; i < (m.Permissions?.Count ?? 0); i++)
        {
            var permission = m.Permissions![i];
            if (permission.Name is null || !KnownPermissions.Contains(permission.Name))
            {
                errors.Add(new($"$.permissions[{i}].name", $"Unknown permission; use one of {string.Join(", ", KnownPermissions)}."));
            }
            else if (permission.Name == PluginPermissions.HttpFetch && (permission.Parameters?.GetValueOrDefault("hosts") is not { ValueKind: JsonValueKind.Array } hosts || hosts.GetArrayLength() == 0))
            {
                errors.Add(new($"$.permissions[{i}].parameters.hosts", "http:fetch needs the list of hosts it may call."));
            }
            else if (permission.Name == PluginPermissions.OAuthUse && (permission.Parameters?.GetValueOrDefault("providers") is not { ValueKind: JsonValueKind.Array } providers || providers.GetArrayLength() == 0))
            {
                errors.Add(new($"$.permissions[{i}].parameters.providers", "oauth:use needs the list of providers whose connection it uses (e.g. [\"github\"])."));
            }
            else if (permission.Name == PluginPermissions.SecretsRead && (permission.Parameters?.GetValueOrDefault("names") is not { ValueKind: JsonValueKind.Array } names
                || names.GetArrayLength() is 0 or > 32 || names.EnumerateArray().Any(n => n.ValueKind != JsonValueKind.String || !ClippyBot.Contracts.WorkspaceSecretNames.IsValid(n.GetString()))))
            {
                errors.Add(new($"$.permissions[{i}].parameters.names", $"secrets:read needs the names of the workspace secrets it reads: 1–32 names, each {ClippyBot.Contracts.WorkspaceSecretNames.Rule} (e.g. [\"WEBHOOK_KEY\"])."));
            }
            else if (permission.Name == PluginPermissions.StorageKv && permission.Parameters?.GetValueOrDefault("quotaBytes") is { } quota
                && !(quota.ValueKind == JsonValueKind.Number && quota.TryGetInt64(out var bytes) && bytes is >= 1 and <= MaxKvQuotaBytes))
            {
                // One meaning only: a value the host would read as "the default" could pass for a smaller one in consent.
                errors.Add(new($"$.permissions[{i}].parameters.quotaBytes", $"storage:kv's quotaBytes is a whole number of bytes, 1–{MaxKvQuotaBytes} (or leave it out for the default)."));
            }
        }
        if (m.Resources is { } r && (r.MemoryMiB is < 1 or > 512 || r.Fuel is < 1 || r.TimeoutMs is < 1 or > 30_000))
        {
            errors.Add(new("$.resources", "memoryMiB 1–512, fuel ≥ 1, timeoutMs 1–30000."));
        }
        return errors;
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,63}$")]
    private static partial Regex Identifier();
}
