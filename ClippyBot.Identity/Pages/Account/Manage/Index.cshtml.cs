using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account.Manage;

public sealed class IndexModel(UserManager<ApplicationUser> users, SecurityLog log, VerificationMail verification) : PageModel
{
    public string Email { get; private set; } = "";

    public bool EmailConfirmed { get; private set; }

    public bool TwoFactorEnabled { get; private set; }

    public IReadOnlyList<SecurityEvent> Events { get; private set; } = [];

    public string? Notice { get; private set; }

    public async Task<IActionResult> OnGetAsync() => await LoadAsync();

    public async Task<IActionResult> OnPostResendVerificationAsync()
    {
        if (await users.GetUserAsync(User) is { } user)
        {
            Notice = await verification.SendAsync(user, HttpContext.RequestAborted)
                ? "A new confirmation link is on its way; earlier links no longer work."
                : "A link was sent less than a minute ago, or your address is already confirmed.";
        }
        return await LoadAsync();
    }

    public static string Describe(string kind) => kind switch
    {
        SecurityEventKind.EmailVerified => "Email address confirmed",
        SecurityEventKind.PasswordChanged => "Password changed",
        SecurityEventKind.PasswordReset => "Password reset by email link",
        SecurityEventKind.PasswordResetRequested => "Password reset link requested",
        SecurityEventKind.TwoFactorEnabled => "Two-factor authentication turned on",
        SecurityEventKind.TwoFactorDisabled => "Two-factor authentication turned off",
        SecurityEventKind.RecoveryCodeUsed => "Signed in with a recovery code",
        SecurityEventKind.RecoveryCodesRegenerated => "New recovery codes made",
        SecurityEventKind.SecondFactorFailed => "Wrong two-factor code entered",
        SecurityEventKind.OtherSessionsEnded => "Other sessions signed out",
        _ => kind,
    };

    private async Task<IActionResult> LoadAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        Email = user.Email ?? "";
        EmailConfirmed = user.EmailConfirmed;
        TwoFactorEnabled = user.TwoFactorEnabled;
        Events = await log.RecentAsync(user.Id, 20, HttpContext.RequestAborted);
        return Page();
    }
}
