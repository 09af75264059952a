namespace ClippyBot.Identity.Apps;

/// <summary>Configuration section <c>Apps</c>: registered apps (docs/apps.md).</summary>
public sealed class AppsOptions
{
    public const string SectionName = "Apps";

    /// <summary>How long a rotated secret keeps working beside the new one.</summary>
    public TimeSpan SecretRotationGrace { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How long an initial access token (RFC 7591) may be used, once.</summary>
    public TimeSpan InitialAccessTokenLifetime { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Most apps one developer may have (deleted ones not counted): a registration flood ends here.</summary>
    public int MaxAppsPerOwner { get; set; } = 25;

    /// <summary>How long refused requests stay recorded (an anonymous flood must not grow the table for ever).</summary>
    public TimeSpan RefusalRetention { get; set; } = TimeSpan.FromDays(90);

    /// <summary>Most unused initial access tokens one developer may hold at once.</summary>
    public int MaxOpenInitialAccessTokens { get; set; } = 5;
}
