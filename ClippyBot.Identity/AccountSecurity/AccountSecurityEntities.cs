namespace ClippyBot.Identity.AccountSecurity;

/// <summary>A single-use emailed token (verify address, reset password), stored only as a keyed hash.</summary>
public sealed class AccountToken
{
    public Guid Id { get; set; }

    public Guid UserId { get; set; }

    /// <summary><see cref="AccountTokenPurpose"/>.</summary>
    public required string Purpose { get; set; }

    public required byte[] Hash { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}

public static class AccountTokenPurpose
{
    public const string VerifyEmail = "verify-email";
    public const string ResetPassword = "reset-password";
}

/// <summary>One unused two-factor recovery code, stored only as a keyed hash; using it deletes the row.</summary>
public sealed class RecoveryCode
{
    public long Id { get; set; }

    public Guid UserId { get; set; }

    public required byte[] Hash { get; set; }

    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>An entry of a user's security log, shown to them on the account page.</summary>
public sealed class SecurityEvent
{
    public long Id { get; set; }

    public Guid UserId { get; set; }

    public DateTimeOffset At { get; set; }

    /// <summary><see cref="SecurityEventKind"/>.</summary>
    public required string Kind { get; set; }

    public string IpAddress { get; set; } = "";
}

public static class SecurityEventKind
{
    public const string EmailVerified = "email_verified";
    public const string PasswordChanged = "password_changed";
    public const string PasswordReset = "password_reset";
    public const string PasswordResetRequested = "password_reset_requested";
    public const string TwoFactorEnabled = "two_factor_enabled";
    public const string TwoFactorDisabled = "two_factor_disabled";
    public const string RecoveryCodeUsed = "recovery_code_used";
    public const string RecoveryCodesRegenerated = "recovery_codes_regenerated";
    public const string SecondFactorFailed = "second_factor_failed";
    public const string OtherSessionsEnded = "other_sessions_ended";
}
