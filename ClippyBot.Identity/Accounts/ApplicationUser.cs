using Microsoft.AspNetCore.Identity;

namespace ClippyBot.Identity.Accounts;

public sealed class ApplicationUser : IdentityUser<Guid>
{
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>TOTP secret sealed with AES-256-GCM (see AccountSecrets); set during enrolment, null when two-factor is off.</summary>
    public byte[]? TotpSecret { get; set; }

    /// <summary>The last accepted TOTP time step: a code of this step or earlier is refused (no replay).</summary>
    public long TotpLastStep { get; set; }
}
