using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account;

/// <summary>
/// A valid emailed token lets the user set a new password. The token is spent only when the new password is accepted;
/// then every reset link dies, every session and refresh token of the account is revoked, and a notice is mailed.
/// </summary>
public sealed class ResetPasswordModel(
    ClippyUserManager users, AccountTokens tokens, SessionRevoker revoker, AccountMail mail, SecurityLog log, AccountSecurity.TwoFactor twoFactor) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    [BindProperty]
    public string NewPassword { get; set; } = "";

    public bool TokenValid { get; private set; }

    public bool Done { get; private set; }

    public async Task OnGetAsync() => TokenValid = await tokens.IsValidAsync(Token, AccountTokenPurpose.ResetPassword, HttpContext.RequestAborted);

    public async Task<IActionResult> OnPostAsync()
    {
        var ct = HttpContext.RequestAborted;
        var owner = await tokens.PeekAsync(Token, AccountTokenPurpose.ResetPassword, ct);
        var user = owner is null ? null : await users.FindByIdAsync(owner.Value.ToString());
        TokenValid = user is not null;
        if (user is null)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        var password = NewPassword ?? "";
        NewPassword = "";
        var policy = await users.ValidateNewPasswordAsync(user, password);
        if (!policy.Succeeded)
        {
            foreach (var error in policy.Errors)
            {
                ModelState.AddModelError(nameof(NewPassword), error.Description);
            }
            return Page();
        }
        // Spent now: of two concurrent submissions only one gets here.
        if (await tokens.RedeemAsync(Token, AccountTokenPurpose.ResetPassword, ct) != user.Id)
        {
            TokenValid = false;
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        // The link arrived by email, which proves the address too. If the address had never been proven, whoever
        // registered it may not be its owner (pre-account takeover): what they set up — a second factor, recovery codes —
        // goes with their password, and the notice says so.
        var wasUnverified = !user.EmailConfirmed;
        if (wasUnverified)
        {
            await twoFactor.DisableAsync(user, ct);
            user = await users.FindByIdAsync(user.Id.ToString()) ?? user;
        }
        user.EmailConfirmed = true;
        var result = await users.ReplacePasswordAsync(user, password);
        if (!result.Succeeded)
        {
            foreach (var error in result.Errors)
            {
                ModelState.AddModelError(nameof(NewPassword), error.Description);
            }
            return Page();
        }
        await users.ResetAccessFailedCountAsync(user);
        await tokens.RevokeAllAsync(user.Id, AccountTokenPurpose.ResetPassword, ct);
        await revoker.RevokeAllAsync(user, ct);
        await log.RecordAsync(user.Id, SecurityEventKind.PasswordReset, ct);
        await mail.Notice(user.Email!, "password-changed", "Your ClippyBot password was changed",
            "The password of your ClippyBot account was just reset with a link sent to this address. Every session was signed out."
            + (wasUnverified ? " The address had not been confirmed before, so everything set up on the account until now — the password, two-factor authentication and recovery codes — was removed: set up two-factor authentication again if you want it." : ""));
        Done = true;
        return Page();
    }
}
