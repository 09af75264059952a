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
    SecurityLog log) : PageModel
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
        var result = await users.ChangePasswordAsync(user, CurrentPassword ?? "", NewPassword ?? "");
        CurrentPassword = NewPassword = "";
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
        mail.Notice(user.Email!, "password-changed", "Your ClippyBot password was changed",
            "The password of your ClippyBot account was just changed from its account page. Every other session was signed out.");
        Changed = true;
        return Page();
    }
}
