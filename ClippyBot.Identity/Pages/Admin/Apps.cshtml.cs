using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Apps;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Admin;

/// <summary>Every client for platform administrators (two-factor sessions): suspend with a reason (tokens refused at once), resume, mark first-party.</summary>
[Authorize(Policy = AdministratorRequirement.PolicyName)]
public sealed class AdminAppsModel(UserManager<ApplicationUser> users, AppRegistry registry) : PageModel
{
    public IReadOnlyList<AppView> Apps { get; private set; } = [];

    public string? Notice { get; private set; }

    private CancellationToken Aborted => HttpContext.RequestAborted;

    public async Task OnGetAsync() => Apps = await registry.ListAllAsync(Aborted);

    public Task<IActionResult> OnPostSuspendAsync(string clientId, string? reason) => ActAsync(clientId, async admin =>
    {
        if (string.IsNullOrWhiteSpace(reason) || reason.Length > 500)
        {
            await registry.RecordRefusalAsync(admin, clientId, "app.suspend", "no reason given", Aborted);
            return "A suspension needs a reason (at most 500 characters): the app's developer sees it.";
        }
        return await registry.SuspendAsync(admin, clientId, reason.Trim(), Aborted) ? "Suspended: its tokens are refused now." : "No such active app.";
    });

    public Task<IActionResult> OnPostResumeAsync(string clientId) => ActAsync(clientId, async admin =>
        await registry.ResumeAsync(admin, clientId, Aborted) ? "Resumed." : "That app is not suspended.");

    public Task<IActionResult> OnPostFirstPartyAsync(string clientId, bool firstParty) => ActAsync(clientId, async admin =>
        await registry.SetFirstPartyAsync(admin, clientId, firstParty, Aborted) ? "Changed." : "Only registered apps are marked here.");

    private async Task<IActionResult> ActAsync(string clientId, Func<Guid, Task<string>> action)
    {
        if (await users.GetUserAsync(User) is not { } admin)
        {
            return Challenge();
        }
        Notice = clientId is { Length: > 0 and <= 100 } ? await action(admin.Id) : "No such app.";
        Apps = await registry.ListAllAsync(Aborted);
        return Page();
    }
}
