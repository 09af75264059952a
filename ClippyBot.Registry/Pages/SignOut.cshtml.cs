using ClippyBot.Registry.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Registry.Pages;

/// <summary>Ends the registry session (POST with an anti-forgery token only: a link cannot sign anyone out).</summary>
public sealed class SignOutModel : PageModel
{
    public IActionResult OnGet() => RedirectToPage("/Index");

    public async Task<IActionResult> OnPostAsync()
    {
        await RegistrySignIn.SignOutAsync(HttpContext);
        return RedirectToPage("/Index");
    }
}
