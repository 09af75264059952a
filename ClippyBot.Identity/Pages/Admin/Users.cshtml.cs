using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Oidc;
using ClippyBot.Identity.Sessions;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Admin;

[Authorize(Policy = AdministratorRequirement.PolicyName)]
public sealed partial class UsersModel(UserManager<ApplicationUser> users, SessionStore sessions, SessionRevoker revoker, ILogger<UsersModel> logger) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string? Email { get; set; }

    public ApplicationUser? Found { get; private set; }

    public int ActiveSessions { get; private set; }

    public bool LockedOut { get; private set; }

    public string? Notice { get; private set; }

    public async Task OnGetAsync()
    {
        if (!string.IsNullOrWhiteSpace(Email))
        {
            await LoadAsync(await users.FindByEmailAsync(Email.Trim()));
        }
    }

    public async Task<IActionResult> OnPostRevokeAllAsync(Guid userId)
    {
        var target = await users.FindByIdAsync(userId.ToString());
        if (target is null)
        {
            return NotFound();
        }
        await revoker.RevokeAllAsync(target, HttpContext.RequestAborted);
        LogRevoked(users.GetUserId(User) ?? "?", target.Id);
        Notice = "Every session of this account has been revoked.";
        await LoadAsync(target);
        return Page();
    }

    private async Task LoadAsync(ApplicationUser? user)
    {
        Found = user;
        if (user is not null)
        {
            Email = user.Email;
            ActiveSessions = (await sessions.ListActiveAsync(user.Id, HttpContext.RequestAborted)).Count;
            LockedOut = await users.IsLockedOutAsync(user);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Administrator {AdminId} revoked every session of user {UserId}")]
    private partial void LogRevoked(string adminId, Guid userId);
}
