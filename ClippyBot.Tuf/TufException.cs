namespace ClippyBot.Tuf;

/// <summary>What the update workflow refused, after the specification's attack names where one fits.</summary>
public enum TufFailure
{
    /// <summary>Not valid JSON, a duplicate key, a missing or wrongly typed field, an unknown role type.</summary>
    Malformed,
    /// <summary>Fewer valid signatures by the role's keys than its threshold.</summary>
    Signature,
    /// <summary>A version lower than one already trusted (any role), or a root that is not the next version.</summary>
    Rollback,
    /// <summary>Metadata past its expiry: a repository (or someone in the way) keeps serving an old state.</summary>
    Freeze,
    /// <summary>Metadata whose version, length or hash is not the one the role above it names.</summary>
    MixAndMatch,
    /// <summary>More bytes than allowed for the file.</summary>
    TooLarge,
    /// <summary>A file the repository did not serve.</summary>
    Missing,
    /// <summary>A target whose length or hash is not what targets lists, or that it does not list.</summary>
    Target,
}

public sealed class TufException(TufFailure failure, string message) : Exception(message)
{
    public TufFailure Failure { get; } = failure;
}
