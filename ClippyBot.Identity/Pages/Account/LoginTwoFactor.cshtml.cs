using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace ClippyBot.Identity.Pages.Account;

/// <summary>
/// The second step of a login: a TOTP code (each time step once) or a recovery code (each once). Failures count toward
/// the account's lockout and the network's sign-in throttle, like wrong passwords.
/// </summary>
public sealed class LoginTwoFactorModel(
    SecondFactorLogin login, TwoFactor twoFactor, LoginThrottle throttle,
    SecurityLog log, AccountMail mail, AccountLockout lockout, ClippyBot.ServiceDefaults.Detection.SecuritySignals signals) : PageModel
{
    public const string GenericFailure = "That code is not right, was already used, or the account cannot sign in now.";

    [BindProperty]
    public string Code { get; set; } = "";

    [BindProperty(SupportsGet = true)]
    public string? ReturnUrl { get; set; }

    public string? ErrorMessage { get; private set; }

    public async Task<IActionResult> OnGetAsync() =>
        await login.PendingUserAsync() is null ? RedirectToPage("Login", new { ReturnUrl }) : Page();

    public async Task<IActionResult> OnPostAsync()
    {
        var ct = HttpContext.RequestAborted;
        var user = await login.PendingUserAsync();
        if (user is null)
        {
            return RedirectToPage("Login", new { ReturnUrl });
        }
        var code = Code ?? "";
        Code = "";
        var attempt = await throttle.BeginAsync(HttpContext.Connection.RemoteIpAddress);
        if (!attempt.Allowed)
        {
            ErrorMessage = "Too many attempts from your network. Wait a few minutes and try again.";
            Response.StatusCode = StatusCodes.Status429TooManyRequests;
            return Page();
        }
        if (!await lockout.TryReserveAsync(user, "second_factor"))
        {
            await throttle.CountAsync(attempt);
            ErrorMessage = GenericFailure;
            return Page();
        }

        var digits = code.Count(char.IsAsciiDigit) == code.Count(c => !char.IsWhiteSpace(c));
        if (digits && await twoFactor.VerifyCodeAsync(user, code, ct) && await lockout.SucceededAsync(user))
        {
            await throttle.ForgiveAsync(attempt);
            await login.CompleteAsync(HttpContext, user, "otp");
            return LocalRedirect(SafeReturnUrl());
        }
        if (!digits && await twoFactor.RedeemRecoveryCodeAsync(user, code, ct) && await lockout.SucceededAsync(user))
        {
            await throttle.ForgiveAsync(attempt);
            await log.RecordAsync(user.Id, SecurityEventKind.RecoveryCodeUsed, ct);
            var remaining = await twoFactor.RemainingRecoveryCodesAsync(user.Id, ct);
            await mail.Notice(user.Email!, "recovery-code-used", "A recovery code was used to sign in",
                $"Someone signed in to your ClippyBot account with one of its recovery codes. {remaining} unused codes are left; make a new set from your account page when they run low.");
            await login.CompleteAsync(HttpContext, user);
            return LocalRedirect(SafeReturnUrl());
        }

        await throttle.CountAsync(attempt);
        await lockout.FailedAsync(user);
        await log.RecordAsync(user.Id, SecurityEventKind.SecondFactorFailed, ct);
        signals.Raise(ClippyBot.Contracts.SecuritySignalNames.SignInFailed, user.Id.ToString(),
            "second factor refused from " + (HttpContext.Connection.RemoteIpAddress?.ToString() ?? "an unknown address"));
        ErrorMessage = GenericFailure;
        return Page();
    }

    private string SafeReturnUrl() => !string.IsNullOrEmpty(ReturnUrl) && Url.IsLocalUrl(ReturnUrl) ? ReturnUrl : "/account/manage";
}
