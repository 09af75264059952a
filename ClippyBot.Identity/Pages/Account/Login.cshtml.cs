using ClippyBot.Identity.Accounts;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account;

public sealed class LoginModel(
    SignInManager<ApplicationUser> signIn,
    UserManager<ApplicationUser> users,
    IPasswordHasher<ApplicationUser> hasher,
    LoginThrottle throttle,
    AccountSecurity.SecondFactorLogin secondFactor,
    ClippyBot.ServiceDefaults.Detection.SecuritySignals signals,
    TimeProvider time) : PageModel
{
    /// <summary>One text for unknown account, wrong password and locked account: none of them is revealed.</summary>
    public const string GenericFailure = "The email or password is not right, or the account cannot sign in now.";

    // Verified when the account does not exist or is locked, so those answers cost as much as a wrong password;
    // made by the configured hasher, so it costs exactly what a real hash costs.
    private static string? s_dummyHash;

    [BindProperty]
    public string Email { get; set; } = "";

    [BindProperty]
    public string Password { get; set; } = "";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string? ErrorMessage { get; private set; }

    public string? Notice { get; private set; }

    public void OnGet(bool registered = false, bool confirm = false)
    {
        if (confirm)
        {
            Notice = "Sign in to the account this address belongs to, then confirm the address.";
        }
        if (registered)
        {
            Notice = "Your account is ready. We sent you an email to confirm your address; you can sign in now.";
        }
    }

    public async Task<IActionResult> OnPostAsync()
    {
        var attempt = await throttle.BeginAsync(HttpContext.Connection.RemoteIpAddress);
        if (!attempt.Allowed)
        {
            ErrorMessage = "Too many sign-in attempts from your network. Wait a few minutes and try again.";
            return PageWithStatus(StatusCodes.Status429TooManyRequests);
        }

        var user = string.IsNullOrWhiteSpace(Email) ? null : await users.FindByEmailAsync(Email.Trim());
        if (user is null)
        {
            await VerifyDummyAsync();
            return await FailureAsync(attempt, null);
        }

        var result = await signIn.CheckPasswordSignInAsync(user, Password ?? "", lockoutOnFailure: true);
        if (result.Succeeded)
        {
            await throttle.ForgiveAsync(attempt);
            if (user.TwoFactorEnabled)
            {
                // The password step is remembered for a few minutes in its own cookie; no session exists until the second factor.
                await secondFactor.BeginAsync(HttpContext, user);
                return RedirectToPage("LoginTwoFactor", new { ReturnUrl });
            }
            await signIn.SignInWithClaimsAsync(user, isPersistent: false, [new System.Security.Claims.Claim("amr", "pwd"), AuthenticationTime.Claim(time.GetUtcNow())]);
            return LocalRedirect(SafeReturnUrl());
        }
        if (result.IsLockedOut)
        {
            // Identity answers a locked account without hashing; pay the same cost as a wrong password.
            await VerifyDummyAsync();
        }
        return await FailureAsync(attempt, user);
    }

    private Task<PasswordVerificationResult> VerifyDummyAsync()
    {
        var dummy = s_dummyHash ??= hasher.HashPassword(new ApplicationUser(), "not-a-real-password-0");
        return hasher is Argon2idPasswordHasher<ApplicationUser> argon2
            ? argon2.VerifyHashedPasswordAsync(dummy, Password ?? "", HttpContext.RequestAborted)
            : Task.FromResult(hasher.VerifyHashedPassword(new ApplicationUser(), dummy, Password ?? ""));
    }

    private async Task<PageResult> FailureAsync(LoginAttempt attempt, ApplicationUser? user)
    {
        await throttle.CountAsync(attempt);
        // Never the typed address: an unknown one may be a mistyped password or someone else's address.
        signals.Raise(ClippyBot.Contracts.SecuritySignalNames.SignInFailed, user?.Id.ToString() ?? "unknown-account",
            "password refused from " + (HttpContext.Connection.RemoteIpAddress?.ToString() ?? "an unknown address"));
        ErrorMessage = GenericFailure;
        Password = "";
        return PageWithStatus(StatusCodes.Status200OK);
    }

    private PageResult PageWithStatus(int status)
    {
        Response.StatusCode = status;
        return Page();
    }

    private string SafeReturnUrl() => !string.IsNullOrEmpty(ReturnUrl) && Url.IsLocalUrl(ReturnUrl) ? ReturnUrl : "/account/manage";
}
