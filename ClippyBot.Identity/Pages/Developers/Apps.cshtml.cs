using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Apps;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Developers;

/// <summary>A developer's apps: the list, registration (verified address; two-factor for a confidential app) and initial access tokens.</summary>
public sealed class AppsModel(UserManager<ApplicationUser> users, AppRegistry registry) : PageModel
{
    [BindProperty]
    public AppForm Form { get; set; } = new();

    public IReadOnlyList<AppView> Apps { get; private set; } = [];

    public Dictionary<string, string> Errors { get; private set; } = [];

    public AppCreated? Created { get; private set; }

    public string? InitialAccessToken { get; private set; }

    public DateTimeOffset? InitialAccessTokenExpires { get; private set; }

    public bool Verified { get; private set; }

    public bool TwoFactor { get; private set; }

    public string? Notice { get; private set; }

    private CancellationToken Aborted => HttpContext.RequestAborted;

    public Task<IActionResult> OnGetAsync() => WithUserAsync(_ => Task.CompletedTask);

    public Task<IActionResult> OnPostCreateAsync() => WithUserAsync(async user =>
    {
        if (!user.EmailConfirmed)
        {
            await registry.RecordRefusalAsync(user.Id, "-", "app.create", "address not verified", Aborted);
            return;
        }
        if (Form.Confidential && !user.TwoFactorEnabled)
        {
            Errors["token_endpoint_auth_method"] = "A confidential app needs two-factor sign-in on your account first.";
            Form.ClipForRedisplay();
            await registry.RecordRefusalAsync(user.Id, "-", "app.create", "confidential app without two-factor", Aborted);
            return;
        }
        var (created, errors) = await registry.CreateAsync(user.Id, Form.ToRegistration(), withRegistrationToken: false, Aborted);
        Errors = errors;
        if (created is not null)
        {
            Created = created;
            Form = new AppForm();
        }
        else
        {
            Form.ClipForRedisplay();
        }
    });

    public Task<IActionResult> OnPostInitialAccessTokenAsync() => WithUserAsync(async user =>
    {
        if (!user.EmailConfirmed)
        {
            await registry.RecordRefusalAsync(user.Id, "-", "app.initial-token", "address not verified", Aborted);
            return;
        }
        var (token, expires) = await registry.CreateInitialAccessTokenAsync(user.Id, Aborted);
        if (token is null)
        {
            Notice = "You hold the most unused initial access tokens allowed; use one or let it expire first.";
            return;
        }
        (InitialAccessToken, InitialAccessTokenExpires) = (token, expires);
    });

    private async Task<IActionResult> WithUserAsync(Func<ApplicationUser, Task> action)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        (Verified, TwoFactor) = (user.EmailConfirmed, user.TwoFactorEnabled);
        await action(user);
        Apps = await registry.ListOwnedAsync(user.Id, Aborted);
        Response.Headers.CacheControl = "no-store";
        return Page();
    }
}
