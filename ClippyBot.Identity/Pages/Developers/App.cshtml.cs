using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Apps;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Developers;

/// <summary>One of the developer's apps: change it, rotate its secret, delete it, read its history. Another person's app is 404.</summary>
public sealed class AppModel(UserManager<ApplicationUser> users, AppRegistry registry) : PageModel
{
    [BindProperty(SupportsGet = true)]
    public string ClientId { get; set; } = "";

    [BindProperty]
    public AppForm Form { get; set; } = new();

    public AppView? App { get; private set; }

    public IReadOnlyList<AppAuditEntry> History { get; private set; } = [];

    public Dictionary<string, string> Errors { get; private set; } = [];

    public string? NewSecret { get; private set; }

    public string? Notice { get; private set; }

    private CancellationToken Aborted => HttpContext.RequestAborted;

    public Task<IActionResult> OnGetAsync() => WithAppAsync("app.read", (_, app) =>
    {
        Form = AppForm.From(app);
        return Task.FromResult<IActionResult?>(null);
    });

    public Task<IActionResult> OnPostUpdateAsync() => WithAppAsync("app.update", async (user, app) =>
    {
        // The kind stays what it is (public or confidential).
        Form.Kind = AppForm.From(app).Kind;
        Errors = await registry.UpdateAsync(user.Id, app.ClientId, Form.ToRegistration(), Aborted) ?? [];
        if (Errors.Count > 0)
        {
            Form.ClipForRedisplay();
        }
        Notice = Errors.Count == 0 ? "Saved. Every replica uses the change now." : null;
        return null;
    });

    public Task<IActionResult> OnPostRotateAsync() => WithAppAsync("app.secret-rotate", async (user, app) =>
    {
        if (!user.TwoFactorEnabled)
        {
            await registry.RecordRefusalAsync(user.Id, app.ClientId, "app.secret-rotate", "without two-factor", Aborted);
            Notice = "Rotating a secret needs two-factor sign-in on your account.";
            return null;
        }
        NewSecret = await registry.RotateSecretAsync(user.Id, app.ClientId, Aborted);
        return null;
    });

    public Task<IActionResult> OnPostEndPreviousSecretAsync() => WithAppAsync("app.previous-secret-end", async (user, app) =>
    {
        Notice = await registry.EndPreviousSecretAsync(user.Id, app.ClientId, Aborted)
            ? "The previous secret no longer works, on every replica."
            : "There is no previous secret.";
        return null;
    });

    public Task<IActionResult> OnPostDeleteAsync(bool confirm) => WithAppAsync("app.delete", async (user, app) =>
    {
        if (!confirm)
        {
            Notice = "Tick the box to delete the app.";
            return null;
        }
        await registry.DeleteAsync(user.Id, app.ClientId, Aborted);
        return RedirectToPage("/Developers/Apps");
    });

    private async Task<IActionResult> WithAppAsync(string action, Func<ApplicationUser, AppView, Task<IActionResult?>> then)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        if (ClientId.Length > 100 || await registry.FindOwnedAsync(user.Id, ClientId, Aborted) is null || await registry.ViewAsync(ClientId, Aborted) is not { } app)
        {
            await registry.RecordRefusalAsync(user.Id, ClientId, action, "not the person's app", Aborted);
            return NotFound();
        }
        if (await then(user, app) is { } result)
        {
            return result;
        }
        App = await registry.ViewAsync(ClientId, Aborted);
        if (Errors.Count == 0 && action != "app.update")
        {
            Form = AppForm.From(App!);
        }
        History = await registry.HistoryAsync(ClientId, 50, Aborted);
        Response.Headers.CacheControl = "no-store";
        return Page();
    }
}
