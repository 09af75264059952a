using ClippyBot.Tuf;
using Microsoft.Extensions.Options;

namespace ClippyBot.Registry.Metadata;

/// <summary>
/// The root chain the registry serves (verified as a client would walk it) and the online keys that sign targets,
/// snapshot and timestamp. Start-up fails when the keys are not the ones the newest root names: metadata signed by
/// other keys would be refused by every PluginHost.
/// </summary>
public sealed class RegistrySigner : IDisposable
{
    private readonly List<byte[]> _roots = [];

    public RegistrySigner(IOptions<RegistryOptions> options)
    {
        var settings = options.Value;
        if (settings.Roots.Count == 0)
        {
            throw new InvalidOperationException("Registry:Roots is empty: the registry needs its root metadata (signed offline).");
        }
        RootMetadata? trusted = null;
        foreach (var (encoded, index) in settings.Roots.Select((r, i) => (r, i)))
        {
            var file = Convert.FromBase64String(encoded);
            var envelope = TufEnvelope.Parse(file, $"Registry:Roots:{index}");
            var root = RootMetadata.Parse(envelope.Body);
            if (root.Version != index + 1)
            {
                throw new InvalidOperationException($"Registry:Roots:{index} is root version {root.Version}; version {index + 1} belongs there.");
            }
            if (trusted is not null)
            {
                envelope.RequireThreshold(trusted, TufRole.Root, $"root version {root.Version}");
            }
            envelope.RequireThreshold(root, TufRole.Root, $"root version {root.Version}");
            _roots.Add(file);
            trusted = root;
        }
        Root = trusted!;
        Targets = Load(settings.TargetsKey, TufRole.Targets);
        Snapshot = Load(settings.SnapshotKey, TufRole.Snapshot);
        Timestamp = Load(settings.TimestampKey, TufRole.Timestamp);
    }

    /// <summary>The newest root: it names the keys below.</summary>
    public RootMetadata Root { get; }

    public TufSigningKey Targets { get; }
    public TufSigningKey Snapshot { get; }
    public TufSigningKey Timestamp { get; }

    /// <summary>Root version <paramref name="version"/>'s file, or null.</summary>
    public byte[]? RootFile(long version) => version >= 1 && version <= _roots.Count ? _roots[(int)version - 1] : null;

    private TufSigningKey Load(string seed, string role)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(seed);
        }
        catch (FormatException)
        {
            throw new InvalidOperationException($"Registry:{char.ToUpperInvariant(role[0])}{role[1..]}Key is not base64.");
        }
        if (bytes.Length != 32)
        {
            throw new InvalidOperationException($"Registry:{char.ToUpperInvariant(role[0])}{role[1..]}Key must be a 32-byte Ed25519 seed (base64).");
        }
        var key = TufSigningKey.FromSeed(bytes);
        if (!Root.Roles[role].KeyIds.Contains(key.KeyId, StringComparer.Ordinal) || Root.Roles[role].Threshold != 1)
        {
            key.Dispose();
            throw new InvalidOperationException($"The configured {role} key is not the one root version {Root.Version} names for {role} (threshold 1).");
        }
        return key;
    }

    public void Dispose()
    {
        Targets.Dispose();
        Snapshot.Dispose();
        Timestamp.Dispose();
    }
}
