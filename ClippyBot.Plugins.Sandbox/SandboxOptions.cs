namespace ClippyBot.Plugins.Sandbox;

/// <summary>Limits of one plugin invocation (section <c>Sandbox</c>); a manifest may ask for less, never more.</summary>
public sealed class SandboxOptions
{
    public const string SectionName = "Sandbox";

    /// <summary>Instructions' worth of fuel per invocation: stops infinite loops deterministically.</summary>
    public long Fuel { get; set; } = 50_000_000;

    /// <summary>Wall-clock deadline per invocation (epoch interruption): stops slow host-bound work too.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(1);

    public long MaxMemoryBytes { get; set; } = 64L * 1024 * 1024;

    public int MaxInputBytes { get; set; } = 256 * 1024;

    public int MaxOutputBytes { get; set; } = 256 * 1024;

    /// <summary>Host functions a single invocation may call.</summary>
    public int MaxHostCalls { get; set; } = 100;

    public int MaxMessagesPerInvocation { get; set; } = 10;

    public int MaxModuleBytes { get; set; } = 32 * 1024 * 1024;

    /// <summary>Largest <c>storage:kv</c> quota a manifest may ask for (keys and values, per workspace and plugin).</summary>
    public long MaxKvQuotaBytes { get; set; } = 1024 * 1024;

    /// <summary>Per <c>http:fetch</c> call (and never past the invocation's own deadline).</summary>
    public TimeSpan HttpTimeout { get; set; } = TimeSpan.FromSeconds(5);

    public int HttpMaxResponseBytes { get; set; } = 256 * 1024;

    /// <summary>CIDRs plugins may reach even though private/loopback (empty in production; tests use 127.0.0.1/32).</summary>
    public List<string> HttpPrivateNetworkAllowList { get; set; } = [];

    /// <summary>Quota when the manifest's <c>storage:kv</c> names none.</summary>
    public long DefaultKvQuotaBytes { get; set; } = 64 * 1024;
}
