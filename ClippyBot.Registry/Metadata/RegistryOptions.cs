namespace ClippyBot.Registry.Metadata;

/// <summary>Section <c>Registry</c>: the root files (signed offline), the online keys, lifetimes, and the first-party publisher.</summary>
public sealed class RegistryOptions
{
    public const string SectionName = "Registry";

    /// <summary>Every root metadata file, version 1 first, each base64: clients walk them in order. Signed offline.</summary>
    public List<string> Roots { get; set; } = [];

    /// <summary>The online keys' 32-byte Ed25519 seeds (base64, secret): the root names their public halves.</summary>
    public string TargetsKey { get; set; } = "";
    public string SnapshotKey { get; set; } = "";
    public string TimestampKey { get; set; } = "";

    /// <summary>How long a timestamp is valid: a client that sees none newer within it refuses new installs (freeze).</summary>
    public TimeSpan TimestampLifetime { get; set; } = TimeSpan.FromDays(1);
    public TimeSpan SnapshotLifetime { get; set; } = TimeSpan.FromDays(7);
    public TimeSpan TargetsLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How often each replica checks whether metadata must be signed again (at half its lifetime).</summary>
    public TimeSpan RefreshCheckInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How many versions of each role stay servable: clients mid-refresh still find what the timestamp they read names.</summary>
    public int KeptVersions { get; set; } = 20;

    public FirstPartyOptions FirstParty { get; set; } = new();
}

/// <summary>The platform's own publisher: owns <c>dev.clippybot.*</c>; its bundles from <see cref="BundlesFolder"/> are submitted at start.</summary>
public sealed class FirstPartyOptions
{
    /// <summary>The first-party signing key's raw public key (base64); empty: no first-party publisher.</summary>
    public string PublicKey { get; set; } = "";

    /// <summary>A folder of signed bundles (*.cbp) to submit at start (the AppHost's example plugins).</summary>
    public string BundlesFolder { get; set; } = "";

    /// <summary>Approve first-party versions that pass every automated check without a reviewer (development).</summary>
    public bool AutoApprove { get; set; }
}
