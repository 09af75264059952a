namespace ClippyBot.PluginHost.Registry;

/// <summary>Section <c>Plugins:Registry</c>: where the community registry is and the root this PluginHost pins.</summary>
public sealed class RegistryTrustOptions
{
    public const string SectionName = "Plugins:Registry";

    /// <summary>The registry's base address (service discovery names work); empty: no registry (configured keys only).</summary>
    public string Address { get; set; } = "";

    /// <summary>The pinned root metadata file (base64): every later root must chain to it.</summary>
    public string Root { get; set; } = "";

    /// <summary>How often each replica asks for a new timestamp: approvals and yanks reach it within this (plus a download).</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(2);

    public bool Enabled => Address.Length > 0;
}
