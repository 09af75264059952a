using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account.Manage;

public sealed class ChangePasswordModel(
    UserManager<ApplicationUser> users,
    SignInManager<ApplicationUser> signIn,
    SessionRevoker revoker,
    AccountTokens tokens,
    AccountMail mail,
    SecurityLog log,
    LoginThrottle throttle,
    AccountLockout lockout) : PageModel
{
    [BindProperty]
    public string CurrentPassword { get; set; } = "";

    [BindProperty]
    public string NewPassword { get; set; } = "";

    public bool Changed { get; private set; }

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        // Re-entering the password is a guess like any other: the account lockout and the per-address throttle apply,
        // or a stolen session cookie would be an unlimited password oracle.
        var attempt = await throttle.BeginAsync(HttpContext.Connection.RemoteIpAddress);
        if (!attempt.Allowed)
        {
            CurrentPassword = NewPassword = "";
            ModelState.AddModelError(string.Empty, "Too many attempts from your network. Wait a few minutes and try again.");
            Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return Page();
        }
        if (!await lockout.TryReserveAsync(user, "password_reentry"))
        {
            CurrentPassword = NewPassword = "";
            await throttle.CountAsync(attempt);
            ModelState.AddModelError(string.Empty, "The account is locked after too many wrong passwords. Try again later.");
            return Page();
        }
        var result = await users.ChangePasswordAsync(user, CurrentPassword ?? "", NewPassword ?? "");
        CurrentPassword = NewPassword = "";
        if (result.Errors.Any(e => e.Code == nameof(IdentityErrorDescriber.PasswordMismatch)))
        {
            await lockout.FailedAsync(user);
            await throttle.CountAsync(attempt);
        }
        else
        {
            await lockout.SucceededAsync(user, complete: !user.TwoFactorEnabled);
            await throttle.ForgiveAsync(attempt);
        }
        if (!result.Succeeded)
        {
            foreach (var error in result.Errors)
            {
                ModelState.AddModelError(string.Empty, error.Code == nameof(IdentityErrorDescriber.PasswordMismatch) ? "The current password is not right." : error.Description);
            }
            return Page();
        }
        // Every refresh token, authorization and other browser session dies; this browser gets a fresh cookie.
        await revoker.RevokeAllAsync(user, HttpContext.RequestAborted);
        await signIn.RefreshSignInAsync(user);
        // A reset link mailed before the change must not undo it.
        await tokens.RevokeAllAsync(user.Id, AccountTokenPurpose.ResetPassword, HttpContext.RequestAborted);
        await log.RecordAsync(user.Id, SecurityEventKind.PasswordChanged, HttpContext.RequestAborted);
        await mail.Notice(user.Email!, "password-changed", "Your ClippyBot password was changed",
            "The password of your ClippyBot account was just changed from its account page. Every other session was signed out.");
        Changed = true;
        return Page();
    }
}
