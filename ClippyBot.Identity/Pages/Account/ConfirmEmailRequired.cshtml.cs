using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account;

[Authorize]
public sealed class ConfirmEmailRequiredModel(UserManager<ApplicationUser> users, VerificationMail verification) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string Email { get; private set; } = "";

    public bool Sent { get; private set; }

    public string? ContinueUrl => !string.IsNullOrEmpty(ReturnUrl) && Url.IsLocalUrl(ReturnUrl) ? ReturnUrl : null;

    public async Task<IActionResult> OnGetAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        Email = user.Email ?? "";
        return Page();
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        Email = user.Email ?? "";
        Sent = await verification.SendAsync(user, HttpContext.RequestAborted);
        return Page();
    }
}
