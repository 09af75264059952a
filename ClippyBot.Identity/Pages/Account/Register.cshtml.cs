using System.ComponentModel.DataAnnotations;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account;

public sealed class RegisterModel(
    UserManager<ApplicationUser> users, IPasswordHasher<ApplicationUser> hasher, TimeProvider time, VerificationMail verification, AccountMail mail,
    RegistrationThrottle throttle) : PageModel
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
        if (!await throttle.TryCountAsync(HttpContext.Connection.RemoteIpAddress))
        {
            ModelState.AddModelError(string.Empty, "Too many sign-ups from your network. Wait a few minutes and try again.");
            Password = "";
            Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return Page();
        }
        var email = Email.Trim();
        // The password policy is checked first, for new and existing addresses alike: otherwise a weak password would be
        // refused only for new addresses, and the answer would tell which ones have accounts.
        var policy = await ((ClippyUserManager)users).ValidateNewPasswordAsync(new ApplicationUser { UserName = email, Email = email }, Password);
        if (!policy.Succeeded)
        {
            foreach (var error in policy.Errors)
            {
                ModelState.AddModelError(nameof(Password), error.Description);
            }
            Password = "";
            return Page();
        }
        // An address already registered gets the same answer as a new one, at the same cost (one Argon2id hash), so
        // neither the page nor its timing reveals accounts; its owner is told — at most once per interval.
        if (await users.FindByEmailAsync(email) is { Email: { } existing } owner)
        {
            _ = hasher.HashPassword(owner, Password);
            if (await throttle.MayWarnOwnerAsync(existing))
            {
                await mail.AccountExists(existing);
            }
            return RedirectToPage("Login", new { registered = true, returnUrl = ReturnUrl });
        }
        var user = new ApplicationUser { UserName = email, Email = email, CreatedAt = time.GetUtcNow() };
        var result = await users.CreateAsync(user, Password);
        if (result.Succeeded)
        {
            await verification.SendAsync(user, HttpContext.RequestAborted);
        }
        // Two registrations of one new address racing each other: the loser looks like a success too.
        var duplicate = result.Errors.Any(e => e.Code is nameof(IdentityErrorDescriber.DuplicateEmail) or nameof(IdentityErrorDescriber.DuplicateUserName));
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
