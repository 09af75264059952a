namespace ClippyBot.Api.Privacy;

/// <summary>
/// One export of a person's data (GDPR Art. 15 and 20): a background job whose result is sealed at rest, downloadable by
/// its owner, and through an emailed link until <see cref="ExpiresAt"/>; the result is deleted then.
/// </summary>
public sealed class DataExport
{
    public Guid Id { get; set; }

    public required string SubjectId { get; set; }

    /// <summary>See <see cref="DataExportStatus"/>.</summary>
    public required string Status { get; set; }

    public DateTimeOffset RequestedAt { get; set; }

    /// <summary>When a worker took the job; a job taken long ago by a worker that died is taken again.</summary>
    public DateTimeOffset? StartedAt { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }

    public DateTimeOffset? ExpiresAt { get; set; }

    public int Attempts { get; set; }

    /// <summary>The export document (JSON), sealed with the Api's data keys and bound to this row.</summary>
    public byte[]? Payload { get; set; }

    /// <summary>SHA-256 of the download link's random token; the token itself is only in the mail.</summary>
    public byte[]? DownloadTokenHash { get; set; }

    /// <summary>Why the job failed, for its owner (never personal data).</summary>
    public string? Error { get; set; }
}

public static class DataExportStatus
{
    public const string Pending = "pending";
    public const string Running = "running";
    public const string Ready = "ready";
    public const string Failed = "failed";
    public const string Expired = "expired";
}

/// <summary>
/// An account erasure (GDPR Art. 17). The Api's part happens in the request; Identity's part is retried by the privacy
/// worker until it is done, so an Identity outage delays an erasure but never loses it.
/// </summary>
public sealed class AccountErasure
{
    public required string SubjectId { get; set; }

    public DateTimeOffset RequestedAt { get; set; }

    public DateTimeOffset? CompletedAt { get; set; }

    public int Attempts { get; set; }

    public string? LastError { get; set; }
}
