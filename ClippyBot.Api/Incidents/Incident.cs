namespace ClippyBot.Api.Incidents;

/// <summary>Seed §6's phases, in order: an incident only moves forward, and only closes with a post-incident review.</summary>
public enum IncidentStatus
{
    Detection,
    Containment,
    Investigation,
    Remediation,
    Closed,
}

/// <summary>A security incident: what happened, who is affected, what was done (the timeline) and what was learnt (the review).</summary>
public sealed class Incident
{
    public const int TitleLength = 200;
    public const int SummaryLength = 4000;
    public const int ReviewLength = 20000;
    public const int PersonalDataLength = 1000;

    /// <summary>GDPR art. 33/34: people are told within 72 hours of learning their personal data was affected.</summary>
    public static readonly TimeSpan NotificationDeadline = TimeSpan.FromHours(72);

    public Guid Id { get; set; }

    public required string Title { get; set; }

    public string Summary { get; set; } = "";

    public required string Severity { get; set; }

    public IncidentStatus Status { get; set; }

    public DateTimeOffset OpenedAt { get; set; }

    public required string OpenedBy { get; set; }

    public DateTimeOffset? ClosedAt { get; set; }

    /// <summary>The post-incident review: required before the incident closes.</summary>
    public string Review { get; set; } = "";

    /// <summary>When an administrator marked personal data affected: the 72-hour clock starts here.</summary>
    public DateTimeOffset? PersonalDataAffectedAt { get; set; }

    /// <summary>Which personal data (as the administrator described it).</summary>
    public string PersonalData { get; set; } = "";

    /// <summary>When the affected people were first notified.</summary>
    public DateTimeOffset? NotifiedAt { get; set; }

    public DateTimeOffset? NotifyBy => PersonalDataAffectedAt + NotificationDeadline;
}

/// <summary>One line of an incident's timeline: a status change, a containment action taken from the incident, a note…</summary>
public sealed class IncidentTimelineEntry
{
    public const int TextLength = 4000;

    public long Id { get; set; }

    public Guid IncidentId { get; set; }

    public DateTimeOffset At { get; set; }

    public required string Actor { get; set; }

    /// <summary><c>opened</c>, <c>status</c>, <c>note</c>, <c>containment</c>, <c>alert</c>, <c>affected</c>, <c>personal-data</c>, <c>notification</c>, <c>review</c>.</summary>
    public required string Kind { get; set; }

    public required string Text { get; set; }
}

/// <summary>A workspace or a person affected by an incident: selected by an administrator, or derived from the audit chains.</summary>
public sealed class IncidentSubject
{
    public const string Workspace = "workspace";
    public const string Person = "person";

    public Guid IncidentId { get; set; }

    public required string Kind { get; set; }

    public required string SubjectId { get; set; }

    /// <summary><c>selected</c> or <c>derived</c>.</summary>
    public required string Source { get; set; }

    public DateTimeOffset AddedAt { get; set; }
}

/// <summary>A notification mail to one affected person or workspace owner, and what became of it.</summary>
public sealed class IncidentNotification
{
    public const string Person = "person";
    public const string Owner = "owner";

    public Guid IncidentId { get; set; }

    public required string UserId { get; set; }

    /// <summary><see cref="Person"/> (their data was affected) or <see cref="Owner"/> (of an affected workspace).</summary>
    public required string Audience { get; set; }

    public DateTimeOffset QueuedAt { get; set; }

    /// <summary>The mail in the durable outbox, while it is there.</summary>
    public Guid? MailId { get; set; }

    public DateTimeOffset? DeliveredAt { get; set; }

    /// <summary>Why it could not be sent (no verified address, the mail server refused it for good…).</summary>
    public string? Failure { get; set; }
}
