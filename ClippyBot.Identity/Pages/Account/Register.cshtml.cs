using System.ComponentModel.DataAnnotations;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account;

public sealed class RegisterModel(UserManager<ApplicationUser> users, TimeProvider time, VerificationMail verification, AccountMail mail) : PageModel
{
    [BindProperty]
    [Required, EmailAddress, StringLength(254)]
    public string Email { get; set; } = "";

    [BindProperty]
    [Required]
    public string Password { get; set; } = "";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public void OnGet()
    {
    }

    public async Task<IActionResult> OnPostAsync()
    {
        if (!ModelState.IsValid)
        {
            return Page();
        }
        var email = Email.Trim();
        var user = new ApplicationUser { UserName = email, Email = email, CreatedAt = time.GetUtcNow() };
        var result = await users.CreateAsync(user, Password);
        // An address already registered gets the same answer as a new one, so the form does not reveal accounts.
        var duplicate = result.Errors.Any(e => e.Code is nameof(IdentityErrorDescriber.DuplicateEmail) or nameof(IdentityErrorDescriber.DuplicateUserName));
        if (result.Succeeded)
        {
            await verification.SendAsync(user, HttpContext.RequestAborted);
        }
        else if (duplicate && await users.FindByEmailAsync(email) is { Email: { } existing })
        {
            // The owner of the address learns that someone tried; the person on this page learns nothing new.
            mail.AccountExists(existing);
        }
        if (result.Succeeded || duplicate)
        {
            return RedirectToPage("Login", new { registered = true, returnUrl = ReturnUrl });
        }
        foreach (var error in result.Errors)
        {
            ModelState.AddModelError(nameof(Password), error.Description);
        }
        Password = "";
        return Page();
    }
}
