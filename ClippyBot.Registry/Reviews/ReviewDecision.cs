namespace ClippyBot.Registry.Reviews;

/// <summary>One reviewer's approval or rejection of a version, with the mandatory note.</summary>
public sealed class ReviewDecision
{
    public Guid Id { get; set; }
    public Guid VersionId { get; set; }
    public string Reviewer { get; set; } = "";
    public bool Approved { get; set; }
    public string Note { get; set; } = "";
    public DateTimeOffset At { get; set; }
}
