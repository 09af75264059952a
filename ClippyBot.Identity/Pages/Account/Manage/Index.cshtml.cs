using ClippyBot.Identity.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account.Manage;

public sealed class IndexModel(UserManager<ApplicationUser> users) : PageModel
{
    public string Email { get; private set; } = "";

    public async Task OnGetAsync() => Email = (await users.GetUserAsync(User))?.Email ?? "";
}
