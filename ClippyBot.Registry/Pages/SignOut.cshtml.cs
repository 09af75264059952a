using ClippyBot.Registry.Web;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Registry.Pages;

/// <summary>
/// Ends the registry session (POST with an anti-forgery token only: a link cannot sign anyone out). "Sign in again" also
/// asks Identity for a fresh sign-in (<c>prompt=login</c>), so a person who has since turned on a second factor does not
/// come straight back with the same password-only session.
/// </summary>
public sealed class SignOutModel : PageModel
{
    public IActionResult OnGet() => RedirectToPage("/Index");

    public async Task<IActionResult> OnPostAsync(bool again = false)
    {
        await RegistrySignIn.SignOutAsync(HttpContext);
        return again
            ? Challenge(new OpenIdConnectChallengeProperties { Prompt = "login", RedirectUri = "/" }, RegistrySignIn.OidcScheme)
            : RedirectToPage("/Index");
    }
}
