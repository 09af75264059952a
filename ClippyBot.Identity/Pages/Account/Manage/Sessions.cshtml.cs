using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Oidc;
using ClippyBot.Identity.Sessions;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account.Manage;

public sealed class SessionsModel(UserManager<ApplicationUser> users, SignInManager<ApplicationUser> signIn, SessionStore sessions, SessionRevoker revoker) : PageModel
{
    public IReadOnlyList<UserSession> Sessions { get; private set; } = [];

    public string? Notice { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        Sessions = await sessions.ListActiveAsync(user.Id, HttpContext.RequestAborted);
        return Page();
    }

    public async Task<IActionResult> OnPostEndAsync(Guid sessionId)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        // Only the user's own sessions: another user's id simply is not found.
        Notice = await sessions.EndAsync(user.Id, sessionId, HttpContext.RequestAborted) ? "The session has ended." : "That session had already ended.";
        Sessions = await sessions.ListActiveAsync(user.Id, HttpContext.RequestAborted);
        return Page();
    }

    public async Task<IActionResult> OnPostEndAllAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        await revoker.RevokeAllAsync(user, HttpContext.RequestAborted);
        await signIn.SignOutAsync();
        return RedirectToPage("/Account/Login");
    }
}
