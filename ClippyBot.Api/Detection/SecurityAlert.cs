namespace ClippyBot.Api.Detection;

/// <summary>
/// One episode of a rule firing, for one subject (or the platform: <see cref="PlatformSubject"/>): created when the rule
/// first fires, updated while it keeps firing, resolved after the rule's quiet period. Replicas race to create it; a unique
/// index on open alerts per rule and subject lets exactly one win, and only the winner mails the administrators.
/// </summary>
public sealed class SecurityAlert
{
    public const string PlatformSubject = "*";
    public const int RuleLength = 64;
    public const int SubjectLength = 200;

    public Guid Id { get; set; }

    public required string Rule { get; set; }

    public required string Severity { get; set; }

    public required string Subject { get; set; }

    public required string Description { get; set; }

    public long Threshold { get; set; }

    public int WindowMinutes { get; set; }

    public DateTimeOffset FirstSeen { get; set; }

    public DateTimeOffset LastSeen { get; set; }

    public DateTimeOffset? ResolvedAt { get; set; }

    /// <summary>Occurrences counted in the episode so far (from the window that first fired).</summary>
    public long Count { get; set; }

    /// <summary>The highest count seen in one window.</summary>
    public long PeakWindowCount { get; set; }

    /// <summary>The subjects involved, most frequent first (JSON: <see cref="AlertSubject"/>[]).</summary>
    public string SubjectsJson { get; set; } = "[]";

    /// <summary>Recent samples (JSON: <see cref="AlertSample"/>[]); audit samples name their entry (<c>audit:{chain}:{id}</c>).</summary>
    public string SamplesJson { get; set; } = "[]";

    /// <summary>When the administrators were mailed (claimed by one replica before it sends).</summary>
    public DateTimeOffset? MailedAt { get; set; }

    public int MailedTo { get; set; }

    /// <summary>The incident an administrator opened from it or linked it to.</summary>
    public Guid? IncidentId { get; set; }

    public string Status => ResolvedAt is null ? "firing" : "resolved";
}

public sealed record AlertSubject(string Subject, long Count);

public sealed record AlertSample(DateTimeOffset At, string Signal, string Subject, string Detail);
