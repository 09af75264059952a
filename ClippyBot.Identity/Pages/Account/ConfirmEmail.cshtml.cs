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

    public async Task<IActionResult> OnPostAsync()
    {
        var userId = await tokens.RedeemAsync(Token, AccountTokenPurpose.VerifyEmail, HttpContext.RequestAborted);
        if (userId is null || await users.FindByIdAsync(userId.Value.ToString()) is not { } user)
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
