namespace ClippyBot.Plugins.Bundles;

/// <summary>A trusted signing key: public key only, and the plugin ids it may vouch for (<c>*</c> = any: first-party keys).</summary>
public sealed record TrustedKey(string Name, byte[] PublicKey, IReadOnlyList<string> Plugins)
{
    public string KeyId => PluginSigning.KeyIdOf(PublicKey);

    public bool MayVouchFor(string pluginId) => Plugins.Any(p => p == "*" || string.Equals(p, pluginId, StringComparison.Ordinal));
}

/// <summary>
/// Public keys the PluginHost accepts signatures from (section <c>Plugins:TrustedKeys</c>: <c>Name</c>, <c>PublicKey</c> base64,
/// <c>Plugins</c>). First-party keys come from configuration today; per-publisher keys from a registry later, through the
/// same <see cref="TrustedKey.Plugins"/> scoping.
/// </summary>
public sealed class PluginTrustStore(IEnumerable<TrustedKey> keys)
{
    private readonly Dictionary<string, TrustedKey> _keys = keys.ToDictionary(k => k.KeyId, StringComparer.Ordinal);

    public TrustedKey? Find(string keyId) => _keys.GetValueOrDefault(keyId);
}
