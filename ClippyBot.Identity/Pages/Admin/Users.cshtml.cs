using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Oidc;
using ClippyBot.Identity.Sessions;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Admin;

[Authorize(Policy = AdministratorRequirement.PolicyName)]
public sealed partial class UsersModel(UserManager<ApplicationUser> users, SessionStore sessions, ClippyBot.Identity.Containment.AccountContainment containment, ILogger<UsersModel> logger) : PageModel
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
        await containment.RevokeSessionsAsync(target, HttpContext.RequestAborted);
        LogRevoked(users.GetUserId(User) ?? "?", target.Id);
        Notice = "Every session of this account has been revoked.";
        await LoadAsync(target);
        return Page();
    }

    /// <summary>Containment: the account cannot sign in until unlocked, and every session ends now.</summary>
    public async Task<IActionResult> OnPostLockAsync(Guid userId)
    {
        var target = await users.FindByIdAsync(userId.ToString());
        if (target is null)
        {
            return NotFound();
        }
        await containment.LockAsync(target, HttpContext.RequestAborted);
        LogLocked(users.GetUserId(User) ?? "?", target.Id);
        Notice = "The account is locked and every session has been revoked.";
        await LoadAsync(target);
        return Page();
    }

    public async Task<IActionResult> OnPostUnlockAsync(Guid userId)
    {
        var target = await users.FindByIdAsync(userId.ToString());
        if (target is null)
        {
            return NotFound();
        }
        await containment.UnlockAsync(target);
        LogUnlocked(users.GetUserId(User) ?? "?", target.Id);
        Notice = "The account is unlocked.";
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Administrator {AdminId} locked user {UserId} and revoked every session")]
    private partial void LogLocked(string adminId, Guid userId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Administrator {AdminId} unlocked user {UserId}")]
    private partial void LogUnlocked(string adminId, Guid userId);
}
