using System.Diagnostics.Metrics;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Tuf;

namespace ClippyBot.PluginHost.Registry;

/// <summary>
/// What this replica currently trusts from the registry: the verified targets, and the trust store made from them — each
/// listed publisher key may vouch only for the plugin ids it is listed with. Installs need a fresh (not frozen) set;
/// running what is installed needs only the last verified one.
/// </summary>
public sealed class RegistryTrust
{
    public const string MeterName = "ClippyBot.Plugins.Registry";
    private volatile Snapshot _current = new(null, new PluginTrustStore([]), Frozen: false, Refreshed: null, Problem: "no registry metadata yet");

    public RegistryTrust(IMeterFactory meters, TimeProvider time)
    {
        var meter = meters.Create(MeterName);
        // Alerting: 1 while the registry's metadata has expired (freeze) or cannot be verified; installs wait meanwhile.
        meter.CreateObservableGauge("clippybot.plugins.registry.frozen", () => _current.Frozen || _current.Set is null ? 1 : 0,
            description: "1 while this PluginHost holds no fresh verified registry metadata (new installs refused; installed versions keep running)");
        meter.CreateObservableGauge("clippybot.plugins.registry.refresh_age", () => _current.Refreshed is { } at ? (time.GetUtcNow() - at).TotalSeconds : double.NaN, "s",
            "Seconds since the registry's metadata was last verified fresh");
        meter.CreateObservableGauge("clippybot.plugins.registry.targets_version", () => _current.Set?.Targets.Version ?? 0,
            description: "The targets metadata version this replica trusts");
    }

    public TufTrustedSet? Set => _current.Set;

    public PluginTrustStore Store => _current.Store;

    /// <summary>True while the last refresh found expired metadata (or could not verify any): new installs wait.</summary>
    public bool Frozen => _current.Frozen || _current.Set is null;

    public string? Problem => _current.Problem;

    public void Trust(TufTrustedSet set, DateTimeOffset at) => _current = new(set, StoreOf(set), Frozen: false, at, Problem: null);

    /// <summary>Keeps what was trusted (installed versions keep running) and marks installs as waiting.</summary>
    public void Freeze(TufTrustedSet? lastVerified, string problem) =>
        _current = _current with { Set = lastVerified ?? _current.Set, Store = lastVerified is null ? _current.Store : StoreOf(lastVerified), Frozen = true, Problem = problem };

    /// <summary>
    /// The bundle must be exactly what targets lists for this id and version (length and SHA-256), signed by the publisher
    /// key listed for that very version.
    /// </summary>
    public TargetFileInfo RequireListed(string pluginId, string version, ReadOnlySpan<byte> bundle, string signerKeyId)
    {
        var set = _current.Set ?? throw new BundleException(BundleError.UnknownKey, "No verified registry metadata yet: nothing can be installed.");
        if (_current.Frozen)
        {
            throw new BundleException(BundleError.UnknownKey, $"The registry's metadata is not fresh ({_current.Problem}): new installs wait until it is.");
        }
        TargetFileInfo listing;
        try
        {
            listing = set.VerifyTarget(TargetName(pluginId, version), bundle);
        }
        catch (TufException e)
        {
            throw new BundleException(BundleError.Tampered, e.Message);
        }
        if (Text(listing, "publisher_key_id") != signerKeyId)
        {
            throw new BundleException(BundleError.KeyNotTrustedForPlugin, $"{pluginId} {version} is listed as signed by {Text(listing, "publisher_key_id")}, not by key {signerKeyId}.");
        }
        return listing;
    }

    /// <summary>When the registry approved a version, as its signed listing says (null when not listed).</summary>
    public DateTimeOffset? ReviewedAt(string pluginId, string version) =>
        _current.Set?.Targets.Targets.GetValueOrDefault(TargetName(pluginId, version)) is { } listing
        && DateTimeOffset.TryParse(Text(listing, "approved_at"), System.Globalization.CultureInfo.InvariantCulture,
            System.Globalization.DateTimeStyles.AssumeUniversal, out var at) ? at : null;

    /// <summary>The name a version is listed under (the registry's convention).</summary>
    public static string TargetName(string pluginId, string version) => $"{pluginId}/{version}.bundle";

    /// <summary>Each listed publisher key, trusted for the plugin ids it is listed with; a listing with odd fields is skipped.</summary>
    public static PluginTrustStore StoreOf(TufTrustedSet set)
    {
        ArgumentNullException.ThrowIfNull(set);
        var keys = new List<(byte[] Key, string Publisher, string Plugin)>();
        foreach (var target in set.Targets.Targets.Values)
        {
            if (Text(target, "publisher_key") is { } encoded && Text(target, "plugin") is { } plugin
                && Convert.TryFromBase64String(encoded, new byte[32], out var written) && written == 32)
            {
                keys.Add((Convert.FromBase64String(encoded), Text(target, "publisher") ?? "registry", plugin));
            }
        }
        return new(keys.GroupBy(k => Convert.ToBase64String(k.Key), StringComparer.Ordinal)
            .Select(g => new TrustedKey(g.First().Publisher, g.First().Key, [.. g.Select(k => k.Plugin).Distinct(StringComparer.Ordinal)])));
    }

    /// <summary>A string field of a listing's <c>custom</c>, or null when absent or not a string.</summary>
    internal static string? Text(TargetFileInfo info, string name) =>
        info.Custom[name] is System.Text.Json.Nodes.JsonValue value && value.GetValueKind() == System.Text.Json.JsonValueKind.String ? value.GetValue<string>() : null;

    private sealed record Snapshot(TufTrustedSet? Set, PluginTrustStore Store, bool Frozen, DateTimeOffset? Refreshed, string? Problem);
}
