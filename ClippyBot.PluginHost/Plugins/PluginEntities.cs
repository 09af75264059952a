namespace ClippyBot.PluginHost.Plugins;

/// <summary>An installed plugin version, kept exactly as signed (manifest bytes, wasm, signatures) so it can be re-verified.</summary>
public sealed class InstalledPlugin
{
    public Guid Id { get; set; }

    public required string PluginId { get; set; }

    public required string Version { get; set; }

    public required byte[] ManifestBytes { get; set; }

    public required byte[] Wasm { get; set; }

    public required string WasmSha256 { get; set; }

    /// <summary>The bundle's signatures (JSON array), re-checked before the code is loaded.</summary>
    public required string SignaturesJson { get; set; }

    public required string SignerKeyId { get; set; }

    public DateTimeOffset InstalledAt { get; set; }

    /// <summary>The version invocations use; updating moves it, a failed update leaves it.</summary>
    public bool Current { get; set; }
}

/// <summary>One trap, limit hit or permission denial (never the input itself: its size and hash only).</summary>
public sealed class CrashLogEntry
{
    public long Id { get; set; }

    public required string PluginId { get; set; }

    public required string Version { get; set; }

    public Guid WorkspaceId { get; set; }

    public required string Outcome { get; set; }

    public required string Kind { get; set; }

    public string? Backtrace { get; set; }

    public long FuelUsed { get; set; }

    public double DurationMs { get; set; }

    public long MemoryBytes { get; set; }

    public int InputBytes { get; set; }

    public required string InputSha256 { get; set; }

    public DateTimeOffset At { get; set; }
}

/// <summary>A plugin version (or all versions, <c>*</c>) refused platform-wide or in one workspace, until released.</summary>
public sealed class QuarantineEntry
{
    public Guid Id { get; set; }

    public required string PluginId { get; set; }

    public required string Version { get; set; }

    /// <summary>Null: platform-wide.</summary>
    public Guid? WorkspaceId { get; set; }

    public required string Reason { get; set; }

    /// <summary><c>rule:&lt;name&gt;</c> or the administrator who set it (kill switch).</summary>
    public required string SetBy { get; set; }

    public DateTimeOffset At { get; set; }

    public DateTimeOffset? ReleasedAt { get; set; }

    public string? ReleasedBy { get; set; }
}

/// <summary>One key of a plugin's storage in one workspace (<c>storage:kv</c>).</summary>
public sealed class PluginKvEntry
{
    public Guid WorkspaceId { get; set; }

    public required string PluginId { get; set; }

    public required string Key { get; set; }

    public required byte[] Value { get; set; }
}
