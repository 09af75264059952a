namespace ClippyBot.Identity.AccountSecurity;

/// <summary>Configuration section <c>AccountSecurity</c>.</summary>
public sealed class AccountSecurityOptions
{
    public const string SectionName = "AccountSecurity";

    /// <summary>Seed §3.1: reset links expire after 24 hours.</summary>
    public TimeSpan PasswordResetLifetime { get; set; } = TimeSpan.FromHours(24);

    public TimeSpan EmailVerificationLifetime { get; set; } = TimeSpan.FromHours(24);

    /// <summary>Accounts whose address is not verified may sign in only to first-party clients (and these pages).</summary>
    public bool RequireVerifiedEmailForThirdPartyClients { get; set; } = true;

    /// <summary>
    /// Where links in emails point (this service's public https origin). Required outside local development: a link built
    /// from the request's Host header would let anyone who can send a request choose where a reset token goes.
    /// </summary>
    public string PublicBaseUrl { get; set; } = "";

    /// <summary>How long the password step of a two-factor login stays valid while the second factor is asked for.</summary>
    public TimeSpan SecondFactorWindow { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long a browser session lives from the last proven credential, however active: after it, even a silent
    /// authorize needs the password again (and a new refresh chain starts only from a real sign-in).
    /// </summary>
    public TimeSpan SessionAbsoluteLifetime { get; set; } = TimeSpan.FromDays(7);

    /// <summary>How recent a password entry must be to turn two-factor authentication off.</summary>
    public TimeSpan RecentPasswordWindow { get; set; } = TimeSpan.FromMinutes(5);
}
