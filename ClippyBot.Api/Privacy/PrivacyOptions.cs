namespace ClippyBot.Api.Privacy;

/// <summary>Configuration section <c>Privacy</c>.</summary>
public sealed class PrivacyOptions
{
    public const string SectionName = "Privacy";

    /// <summary>
    /// The Api's public base address, for the emailed download link. Configured, never taken from the request's Host header
    /// (a forged Host would send the link — and the data — to someone else's server).
    /// </summary>
    public string PublicBaseUrl { get; set; } = "https://localhost:7102";

    /// <summary>How long a finished export can be downloaded; then its document is deleted.</summary>
    public TimeSpan ExportLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often the worker looks for work it was not told about (other replicas' jobs, retries, expiry).</summary>
    public TimeSpan WorkerInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A job taken by a worker that has not finished it after this long is taken again (the worker died).</summary>
    public TimeSpan ClaimTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Attempts before an export is reported failed.</summary>
    public int MaxExportAttempts { get; set; } = 5;
}
