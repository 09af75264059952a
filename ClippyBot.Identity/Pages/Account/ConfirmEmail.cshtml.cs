using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account;

/// <summary>
/// The emailed link opens a page with a button; only the POST spends the token — mail scanners that fetch links must not
/// use it up (and a GET must not change state).
/// </summary>
public sealed class ConfirmEmailModel(AccountTokens tokens, UserManager<ApplicationUser> users, SecurityLog log) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Token { get; set; }

    public bool TokenValid { get; private set; }

    public bool Confirmed { get; private set; }

    public async Task OnGetAsync() => TokenValid = await tokens.IsValidAsync(Token, AccountTokenPurpose.VerifyEmail, HttpContext.RequestAborted);

    /// <summary>
    /// Only the account's own session confirms its address. Whoever registered an address holds that account's password;
    /// if a stranger registered the victim's address, the victim pressing the mailed button while not signed in as that
    /// account must not make the stranger's account verified (pre-account takeover).
    /// </summary>
    public async Task<IActionResult> OnPostAsync()
    {
        var owner = await tokens.PeekAsync(Token, AccountTokenPurpose.VerifyEmail, HttpContext.RequestAborted);
        if (owner is not null && users.GetUserId(User) != owner.Value.ToString())
        {
            return RedirectToPage("Login", new { returnUrl = Url.Page("ConfirmEmail", new { token = Token }), confirm = true });
        }
        var userId = await tokens.RedeemAsync(Token, AccountTokenPurpose.VerifyEmail, HttpContext.RequestAborted);
        if (userId is null || userId != owner || await users.FindByIdAsync(userId.Value.ToString()) is not { } user)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
            return Page();
        }
        user.EmailConfirmed = true;
        await users.UpdateAsync(user);
        await log.RecordAsync(user.Id, SecurityEventKind.EmailVerified, HttpContext.RequestAborted);
        Confirmed = true;
        return Page();
    }
}
