namespace ClippyBot.Tests.Rig;

/// <summary>The real clock, moved forward on demand: lets a running service see "24 hours later" without waiting.</summary>
public sealed class ShiftedClock : TimeProvider
{
    public TimeSpan Offset { get; private set; }

    public void Advance(TimeSpan by) => Offset += by;

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + Offset;
}
