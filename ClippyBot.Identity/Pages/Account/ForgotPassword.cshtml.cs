using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.Pages.Account;

/// <summary>The answer is the same whether or not the address has an account; mail goes out in the background either way.</summary>
public sealed class ForgotPasswordModel(
    UserManager<ApplicationUser> users, AccountTokens tokens, AccountMail mail, SecurityLog log, LoginThrottle throttle,
    IOptions<AccountSecurityOptions> options) : PageModel
{
    [BindProperty]
    public string Email { get; set; } = "";

    public bool Answered { get; private set; }

    public string? ErrorMessage { get; private set; }

    public int LifetimeHours => (int)Math.Round(options.Value.PasswordResetLifetime.TotalHours);

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync()
    {
        // Shares the sign-in throttle: both guess at accounts, and this one also sends mail.
        var attempt = await throttle.BeginAsync(HttpContext.Connection.RemoteIpAddress);
        await throttle.CountAsync(attempt); // every request counts: each may send mail
        if (!attempt.Allowed)
        {
            ErrorMessage = "Too many attempts from your network. Wait a few minutes and try again.";
            Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return Page();
        }
        var ct = HttpContext.RequestAborted;
        var user = string.IsNullOrWhiteSpace(Email) ? null : await users.FindByEmailAsync(Email.Trim());
        // One link a minute per account at most, so the form cannot flood someone's inbox; the answer does not change.
        if (user?.Email is { } address && !await tokens.IssuedRecentlyAsync(user.Id, AccountTokenPurpose.ResetPassword, ct))
        {
            await mail.ResetPassword(address, await tokens.IssueAsync(user.Id, AccountTokenPurpose.ResetPassword, options.Value.PasswordResetLifetime, ct));
            await log.RecordAsync(user.Id, SecurityEventKind.PasswordResetRequested, ct);
        }
        Answered = true;
        return Page();
    }
}
