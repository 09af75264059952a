using ClippyBot.Plugins.Bundles;

namespace ClippyBot.PluginHost.Plugins;

/// <summary>The PluginHost's trusted signing keys from configuration (section <c>Plugins:TrustedKeys</c>).</summary>
public static class PluginTrustConfiguration
{
    public static PluginTrustStore Load(IConfiguration configuration)
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
