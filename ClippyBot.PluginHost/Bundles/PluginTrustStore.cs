namespace ClippyBot.PluginHost.Bundles;

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

    public static PluginTrustStore FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var keys = new List<TrustedKey>();
        foreach (var entry in configuration.GetSection("Plugins:TrustedKeys").GetChildren())
        {
            byte[] publicKey;
            try
            {
                publicKey = Convert.FromBase64String(entry["PublicKey"] ?? "");
            }
            catch (FormatException)
            {
                throw new InvalidOperationException($"Plugins:TrustedKeys:{entry.Key}:PublicKey is not base64.");
            }
            if (publicKey.Length != 32)
            {
                throw new InvalidOperationException($"Plugins:TrustedKeys:{entry.Key}:PublicKey must be a raw 32-byte Ed25519 public key (base64).");
            }
            var plugins = entry.GetSection("Plugins").GetChildren().Select(c => c.Value).OfType<string>().ToList();
            if (plugins.Count == 0)
            {
                // Never implicit: a key trusted for everything must say so.
                throw new InvalidOperationException($"Plugins:TrustedKeys:{entry.Key}:Plugins must list the plugin ids the key may sign, or \"*\" for a first-party key.");
            }
            keys.Add(new TrustedKey(entry["Name"] ?? entry.Key, publicKey, plugins));
        }
        return new PluginTrustStore(keys);
    }
}
