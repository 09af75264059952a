namespace ClippyBot.PluginHost.Plugins;

/// <summary>Anomaly rules (section <c>Quarantine</c>) that quarantine a plugin version automatically.</summary>
public sealed class QuarantineOptions
{
    public const string SectionName = "Quarantine";

    /// <summary>A permission violation (an ungranted capability attempted) quarantines the version in that workspace at once.</summary>
    public bool OnPermissionViolation { get; set; } = true;

    /// <summary>This many traps or limit hits of one version within <see cref="Window"/> quarantine it platform-wide.</summary>
    public int FailuresThreshold { get; set; } = 10;

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Crash-log entries older than this are deleted.</summary>
    public TimeSpan CrashLogRetention { get; set; } = TimeSpan.FromDays(30);
}
