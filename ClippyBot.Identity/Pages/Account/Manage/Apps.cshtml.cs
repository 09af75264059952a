using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Apps;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account.Manage;

/// <summary>The third-party apps a person allowed: what each may do, when it was last used, and "disconnect" (tokens end at once).</summary>
public sealed class ConnectedAppsModel(UserManager<ApplicationUser> users, AppRegistry registry) : PageModel
{
    public IReadOnlyList<(AppConsent Consent, string Name, DateTimeOffset? LastUsed)> Connected { get; private set; } = [];

    public string? Notice { get; private set; }

    public async Task<IActionResult> OnGetAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        Connected = await registry.ConnectedAsync(user.Id, HttpContext.RequestAborted);
        return Page();
    }

    public async Task<IActionResult> OnPostDisconnectAsync(string clientId)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        // Only the person's own consents and sessions: another app id simply finds nothing.
        Notice = clientId is { Length: > 0 and <= 100 } && await registry.DisconnectAsync(user.Id, clientId, HttpContext.RequestAborted)
            ? "Disconnected: the app's access ended now, and it must ask you again."
            : "That app was not connected.";
        Connected = await registry.ConnectedAsync(user.Id, HttpContext.RequestAborted);
        return Page();
    }
}
