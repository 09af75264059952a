namespace ClippyBot.PluginHost.Plugins;

/// <summary>Anomaly rules (section <c>Quarantine</c>) that quarantine a plugin version automatically.</summary>
public sealed class QuarantineOptions
{
    public const string SectionName = "Quarantine";

    /// <summary>A permission violation (an ungranted capability attempted) quarantines the version in that workspace at once.</summary>
    public bool OnPermissionViolation { get; set; } = true;

    /// <summary>
    /// This many traps or limit hits of one version in one workspace within <see cref="Window"/> quarantine it in that
    /// workspace; platform-wide only when at least <see cref="PlatformMinWorkspaces"/> workspaces saw failures and there
    /// were this many in all — one tenant's events can never quarantine a plugin for everybody.
    /// </summary>
    public int FailuresThreshold { get; set; } = 10;

    /// <summary>Distinct workspaces with failures in the window needed before a version is quarantined platform-wide.</summary>
    public int PlatformMinWorkspaces { get; set; } = 3;

    /// <summary>Invocations of one workspace running at once on one replica (see <see cref="WorkspaceInvocationGate"/>).</summary>
    public int MaxConcurrentInvocationsPerWorkspace { get; set; } = 8;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Crash-log entries older than this are deleted.</summary>
    public TimeSpan CrashLogRetention { get; set; } = TimeSpan.FromDays(30);
}
