using System.Text.Json.Nodes;

namespace ClippyBot.Tuf;

/// <summary>The four top-level roles' names, as in <c>_type</c> and in root's <c>roles</c>.</summary>
public static class TufRole
{
    public const string Root = "root";
    public const string Targets = "targets";
    public const string Snapshot = "snapshot";
    public const string Timestamp = "timestamp";

    public static readonly string[] All = [Root, Targets, Snapshot, Timestamp];
}

/// <summary>The keys of a role and how many of them must sign.</summary>
public sealed record RoleKeys(IReadOnlyList<string> KeyIds, int Threshold);

/// <summary>What a role above says of a metadata file: its version, and (optionally) its length and SHA-256.</summary>
public sealed record MetaFileInfo(long Version, long? Length, string? Sha256)
{
    /// <summary>Describes a metadata file fully: its version, exact length and SHA-256 (what the registry always writes).</summary>
    public static MetaFileInfo Of(long version, byte[] file) =>
        new(version, file.LongLength, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(file)));

    public JsonObject ToJson()
    {
        var json = new JsonObject { ["version"] = Version };
        if (Length is { } length)
        {
            json["length"] = length;
        }
        if (Sha256 is { } sha256)
        {
            json["hashes"] = new JsonObject { ["sha256"] = sha256 };
        }
        return json;
    }

    internal static MetaFileInfo Parse(JsonObject json, string what)
    {
        var version = TufJson.RequiredInteger(json, "version", what, 1);
        long? length = json.ContainsKey("length") ? TufJson.RequiredInteger(json, "length", what, 1) : null;
        string? sha256 = null;
        if (json.ContainsKey("hashes"))
        {
            sha256 = TufHashes.Sha256Of(TufJson.RequiredObject(json, "hashes", what), what);
        }
        return new MetaFileInfo(version, length, sha256);
    }
}

/// <summary>A file the targets role vouches for: its exact length, its SHA-256, and what the registry says of it.</summary>
public sealed record TargetFileInfo(long Length, string Sha256, JsonObject Custom)
{
    public JsonObject ToJson() => new()
    {
        ["length"] = Length,
        ["hashes"] = new JsonObject { ["sha256"] = Sha256 },
        ["custom"] = Custom.DeepClone(),
    };
}

/// <summary>Fields every role carries.</summary>
public abstract record TufMetadata(string Type, long Version, DateTimeOffset Expires)
{
    public const string SpecVersion = "1.0.31";

    /// <summary>The <c>signed</c> object of this metadata.</summary>
    public abstract JsonObject ToJson();

    /// <summary>The metadata file: <c>signed</c> with each key, in canonical JSON.</summary>
    public byte[] Sign(IEnumerable<TufSigningKey> keys) => TufEnvelope.Sign(ToJson(), keys);

    internal static (long Version, DateTimeOffset Expires) Common(JsonObject body, string type)
    {
        var what = $"{type} metadata";
        if (TufJson.String(body, "_type") != type)
        {
            throw new TufException(TufFailure.Malformed, $"{what}: \"_type\" is not \"{type}\".");
        }
        // Clients refuse metadata of a major spec version they do not implement.
        if (TufJson.RequiredString(body, "spec_version", what).Split('.')[0] != "1")
        {
            throw new TufException(TufFailure.Malformed, $"{what}: spec_version {TufJson.String(body, "spec_version")} is not 1.x.");
        }
        return (TufJson.RequiredInteger(body, "version", what, 1), TufJson.Expires(body, what));
    }

    internal static JsonObject Header(string type, long version, DateTimeOffset expires) => new()
    {
        ["_type"] = type,
        ["spec_version"] = SpecVersion,
        ["version"] = version,
        ["expires"] = TufJson.FormatExpires(expires),
    };
}

public sealed record RootMetadata(long Version, DateTimeOffset Expires, IReadOnlyDictionary<string, TufPublicKey> Keys,
    IReadOnlyDictionary<string, RoleKeys> Roles, bool ConsistentSnapshot) : TufMetadata(TufRole.Root, Version, Expires)
{
    public override JsonObject ToJson()
    {
        var json = Header(TufRole.Root, Version, Expires);
        json["consistent_snapshot"] = ConsistentSnapshot;
        json["keys"] = new JsonObject(Keys.Select(k => KeyValuePair.Create(k.Key, (JsonNode?)k.Value.ToJson())));
        json["roles"] = new JsonObject(Roles.Select(r => KeyValuePair.Create(r.Key, (JsonNode?)new JsonObject
        {
            ["keyids"] = new JsonArray([.. r.Value.KeyIds.Select(id => (JsonNode?)id)]),
            ["threshold"] = r.Value.Threshold,
        })));
        return json;
    }

    public static RootMetadata Parse(JsonObject body)
    {
        const string what = "root metadata";
        var (version, expires) = Common(body, TufRole.Root);
        var keys = new Dictionary<string, TufPublicKey>(StringComparer.Ordinal);
        foreach (var (id, node) in TufJson.RequiredObject(body, "keys", what))
        {
            var key = TufPublicKey.Parse(node);
            // A key listed under another key's id would let one key count twice toward a threshold.
            if (key.KeyId != id)
            {
                throw new TufException(TufFailure.Malformed, $"{what}: key id {id} is not the id of its key.");
            }
            keys[id] = key;
        }
        var roles = new Dictionary<string, RoleKeys>(StringComparer.Ordinal);
        var rolesJson = TufJson.RequiredObject(body, "roles", what);
        foreach (var role in TufRole.All)
        {
            var entry = TufJson.RequiredObject(rolesJson, role, what);
            var threshold = (int)Math.Min(TufJson.RequiredInteger(entry, "threshold", $"{what} ({role})", 1), int.MaxValue);
            if (entry["keyids"] is not JsonArray ids || ids.Any(i => i is not JsonValue v || v.GetValueKind() != System.Text.Json.JsonValueKind.String))
            {
                throw new TufException(TufFailure.Malformed, $"{what}: {role}'s keyids are not a list of strings.");
            }
            var keyIds = ids.Select(i => i!.GetValue<string>()).ToList();
            if (keyIds.Distinct(StringComparer.Ordinal).Count() != keyIds.Count || keyIds.Any(k => !keys.ContainsKey(k)) || keyIds.Count < threshold)
            {
                throw new TufException(TufFailure.Malformed, $"{what}: {role} lists a key twice, an unknown key, or fewer keys than its threshold.");
            }
            roles[role] = new RoleKeys(keyIds, threshold);
        }
        var consistent = body["consistent_snapshot"] is JsonValue c && c.GetValueKind() == System.Text.Json.JsonValueKind.True;
        return new RootMetadata(version, expires, keys, roles, consistent);
    }
}

public sealed record TimestampMetadata(long Version, DateTimeOffset Expires, MetaFileInfo Snapshot) : TufMetadata(TufRole.Timestamp, Version, Expires)
{
    public const string SnapshotFile = "snapshot.json";

    public override JsonObject ToJson()
    {
        var json = Header(TufRole.Timestamp, Version, Expires);
        json["meta"] = new JsonObject { [SnapshotFile] = Snapshot.ToJson() };
        return json;
    }

    public static TimestampMetadata Parse(JsonObject body)
    {
        var (version, expires) = Common(body, TufRole.Timestamp);
        var meta = TufJson.RequiredObject(body, "meta", "timestamp metadata");
        return new TimestampMetadata(version, expires, MetaFileInfo.Parse(TufJson.RequiredObject(meta, SnapshotFile, "timestamp metadata"), "timestamp metadata"));
    }
}

public sealed record SnapshotMetadata(long Version, DateTimeOffset Expires, IReadOnlyDictionary<string, MetaFileInfo> Meta) : TufMetadata(TufRole.Snapshot, Version, Expires)
{
    public const string TargetsFile = "targets.json";

    public override JsonObject ToJson()
    {
        var json = Header(TufRole.Snapshot, Version, Expires);
        json["meta"] = new JsonObject(Meta.Select(m => KeyValuePair.Create(m.Key, (JsonNode?)m.Value.ToJson())));
        return json;
    }

    public static SnapshotMetadata Parse(JsonObject body)
    {
        var (version, expires) = Common(body, TufRole.Snapshot);
        var meta = new Dictionary<string, MetaFileInfo>(StringComparer.Ordinal);
        foreach (var (name, node) in TufJson.RequiredObject(body, "meta", "snapshot metadata"))
        {
            meta[name] = MetaFileInfo.Parse(node as JsonObject ?? throw new TufException(TufFailure.Malformed, $"snapshot metadata: {name} is not an object."), "snapshot metadata");
        }
        if (!meta.ContainsKey(TargetsFile))
        {
            throw new TufException(TufFailure.Malformed, "snapshot metadata does not name targets.json.");
        }
        return new SnapshotMetadata(version, expires, meta);
    }
}

/// <param name="Withdrawn">Names no longer listed, with the reason (the registry's extension field <c>x-clippybot-withdrawn</c>): signed with the rest.</param>
public sealed record TargetsMetadata(long Version, DateTimeOffset Expires, IReadOnlyDictionary<string, TargetFileInfo> Targets,
    IReadOnlyDictionary<string, string>? Withdrawn = null) : TufMetadata(TufRole.Targets, Version, Expires)
{
    public const string WithdrawnField = "x-clippybot-withdrawn";

    public override JsonObject ToJson()
    {
        var json = Header(TufRole.Targets, Version, Expires);
        json["targets"] = new JsonObject(Targets.Select(t => KeyValuePair.Create(t.Key, (JsonNode?)t.Value.ToJson())));
        if (Withdrawn is { Count: > 0 })
        {
            json[WithdrawnField] = new JsonObject(Withdrawn.Select(w => KeyValuePair.Create(w.Key, (JsonNode?)w.Value)));
        }
        return json;
    }

    public static TargetsMetadata Parse(JsonObject body)
    {
        const string what = "targets metadata";
        var (version, expires) = Common(body, TufRole.Targets);
        var targets = new Dictionary<string, TargetFileInfo>(StringComparer.Ordinal);
        foreach (var (name, node) in TufJson.RequiredObject(body, "targets", what))
        {
            var entry = node as JsonObject ?? throw new TufException(TufFailure.Malformed, $"{what}: {name} is not an object.");
            var length = TufJson.RequiredInteger(entry, "length", $"{what} ({name})", 0);
            var sha256 = TufHashes.Sha256Of(TufJson.RequiredObject(entry, "hashes", what), what);
            var custom = entry["custom"] as JsonObject ?? [];
            targets[name] = new TargetFileInfo(length, sha256, (JsonObject)custom.DeepClone());
        }
        var withdrawn = new Dictionary<string, string>(StringComparer.Ordinal);
        if (body[WithdrawnField] is JsonObject reasons)
        {
            foreach (var (name, reason) in reasons)
            {
                withdrawn[name] = reason is JsonValue v && v.GetValueKind() == System.Text.Json.JsonValueKind.String
                    ? v.GetValue<string>()
                    : throw new TufException(TufFailure.Malformed, $"{what}: the withdrawal reason of {name} is not a string.");
            }
        }
        return new TargetsMetadata(version, expires, targets, withdrawn);
    }
}

internal static class TufHashes
{
    /// <summary>The platform hashes with SHA-256 only; a listing without it cannot be checked and is refused.</summary>
    public static string Sha256Of(JsonObject hashes, string what) =>
        TufJson.String(hashes, "sha256") is { Length: 64 } hex && hex.All(char.IsAsciiHexDigitLower)
            ? hex
            : throw new TufException(TufFailure.Malformed, $"{what}: hashes carry no lower-case hex sha256.");
}

/// <summary>Root metadata for a key set: the root keys with their threshold, one key each for the online roles.</summary>
public static class TufRoots
{
    public static RootMetadata Create(long version, DateTimeOffset expires, IReadOnlyList<TufPublicKey> rootKeys, int rootThreshold,
        TufPublicKey targets, TufPublicKey snapshot, TufPublicKey timestamp)
    {
        ArgumentNullException.ThrowIfNull(rootKeys);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(timestamp);
        var keys = rootKeys.Concat([targets, snapshot, timestamp]).DistinctBy(k => k.KeyId).ToDictionary(k => k.KeyId, StringComparer.Ordinal);
        return new RootMetadata(version, expires, keys, new Dictionary<string, RoleKeys>(StringComparer.Ordinal)
        {
            [TufRole.Root] = new([.. rootKeys.Select(k => k.KeyId)], rootThreshold),
            [TufRole.Targets] = new([targets.KeyId], 1),
            [TufRole.Snapshot] = new([snapshot.KeyId], 1),
            [TufRole.Timestamp] = new([timestamp.KeyId], 1),
        }, ConsistentSnapshot: true);
    }
}
