using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using QRCoder;

namespace ClippyBot.Identity.Pages.Account.Manage;

public sealed class TwoFactorModel(
    UserManager<ApplicationUser> users, SignInManager<ApplicationUser> signIn, TwoFactor twoFactor, SessionRevoker revoker,
    SecurityLog log, AccountMail mail, LoginThrottle throttle, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<AccountSecurityOptions> options, AccountLockout lockout) : PageModel
{
    [BindProperty]
    public string? Code { get; set; }

    [BindProperty]
    public string? Password { get; set; }

    public bool Enabled { get; private set; }

    public string? PendingSecret { get; private set; }

    public int RemainingRecoveryCodes { get; private set; }

    public IReadOnlyList<string>? RecoveryCodes { get; private set; }

    public bool OfferEndOtherSessions { get; private set; }

    public string? Notice { get; private set; }

    private CancellationToken Aborted => HttpContext.RequestAborted;

    public async Task<IActionResult> OnGetAsync() => await WithUserAsync(_ => Task.CompletedTask);

    /// <summary>The enrolment QR code as PNG, from this origin (the CSP allows no data: images), never cached.</summary>
    public async Task<IActionResult> OnGetQrCodeAsync()
    {
        var user = await users.GetUserAsync(User);
        if (user is null || await twoFactor.PendingSecretAsync(user, Aborted) is not { } secret)
        {
            return NotFound();
        }
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(Crypto.Totp.KeyUri(secret, "ClippyBot", user.Email ?? user.Id.ToString()), QRCodeGenerator.ECCLevel.M);
        Response.Headers.CacheControl = "no-store";
        return File(new PngByteQRCode(data).GetGraphic(6), "image/png");
    }

    public Task<IActionResult> OnPostStartAsync() => WithUserAsync(async user =>
    {
        if (!user.TwoFactorEnabled)
        {
            await twoFactor.BeginEnrolmentAsync(user, Aborted);
        }
    });

    public Task<IActionResult> OnPostConfirmAsync() => WithUserAsync(async user =>
    {
        var codes = await twoFactor.ConfirmEnrolmentAsync(user, Code, Aborted);
        if (codes is null)
        {
            ModelState.AddModelError(nameof(Code), "That code is not right. Check the time on your phone and enter the code the app shows now.");
            return;
        }
        RecoveryCodes = codes;
        OfferEndOtherSessions = true;
        Notice = "Two-factor authentication is on.";
        await log.RecordAsync(user.Id, SecurityEventKind.TwoFactorEnabled, Aborted);
        await mail.Notice(user.Email!, "two-factor-enabled", "Two-factor authentication is on",
            "Two-factor authentication was turned on for your ClippyBot account. Signing in now needs a code from your authenticator app.");
        // The session cookie now stands for a login made before 2FA; refresh it so its claims match the account.
        await signIn.RefreshSignInAsync(user);
    });

    public Task<IActionResult> OnPostRegenerateAsync() => WithUserAsync(async user =>
    {
        // New recovery codes are a permanent way in: a recent sign-in, and the code counts like any other guess.
        if (!AuthenticationTime.IsRecent(User, options.Value.RecentPasswordWindow, time))
        {
            Code = null;
            ModelState.AddModelError(string.Empty, $"For your safety, sign in again (within the last {(int)options.Value.RecentPasswordWindow.TotalMinutes} minutes) to make new recovery codes.");
            return;
        }
        var attempt = await throttle.BeginAsync(HttpContext.Connection.RemoteIpAddress);
        if (!attempt.Allowed || !await lockout.TryReserveAsync(user, "second_factor"))
        {
            Code = null;
            if (attempt.Allowed)
            {
                await throttle.CountAsync(attempt);
            }
            ModelState.AddModelError(string.Empty, "Too many wrong attempts. Try again later.");
            return;
        }
        if (!await twoFactor.VerifyCodeAsync(user, Code, Aborted))
        {
            await lockout.FailedAsync(user);
            await throttle.CountAsync(attempt);
            ModelState.AddModelError(nameof(Code), "That code is not right or was already used. Wait for the next one.");
            return;
        }
        await throttle.ForgiveAsync(attempt);
        if (!await lockout.SucceededAsync(user))
        {
            ModelState.AddModelError(string.Empty, "Too many wrong attempts. Try again later.");
            return;
        }
        RecoveryCodes = await twoFactor.RegenerateRecoveryCodesAsync(user, Aborted);
        Notice = "New recovery codes are ready; the old ones no longer work.";
        await log.RecordAsync(user.Id, SecurityEventKind.RecoveryCodesRegenerated, Aborted);
        await mail.Notice(user.Email!, "recovery-codes-regenerated", "New recovery codes were made",
            "A new set of recovery codes was made for your ClippyBot account; the previous codes no longer work.");
    });

    /// <summary>Needs the password (entered now, so it is recent) and a current code or a recovery code.</summary>
    public Task<IActionResult> OnPostDisableAsync() => WithUserAsync(async user =>
    {
        // Irreversible for the account's safety: a sign-in at most a few minutes old (step-up), an account that is not
        // locked, and every wrong password or code counts toward the lockout and the per-address throttle.
        if (!AuthenticationTime.IsRecent(User, options.Value.RecentPasswordWindow, time))
        {
            Password = Code = null;
            ModelState.AddModelError(string.Empty, $"For your safety, sign in again (within the last {(int)options.Value.RecentPasswordWindow.TotalMinutes} minutes) to turn two-factor authentication off.");
            return;
        }
        var attempt = await throttle.BeginAsync(HttpContext.Connection.RemoteIpAddress);
        if (!attempt.Allowed)
        {
            Password = Code = null;
            ModelState.AddModelError(string.Empty, "Too many attempts from your network. Wait a few minutes and try again.");
            return;
        }
        if (!await lockout.TryReserveAsync(user, "password_reentry"))
        {
            Password = Code = null;
            await throttle.CountAsync(attempt);
            ModelState.AddModelError(string.Empty, "The account is locked after too many wrong attempts. Try again later.");
            return;
        }
        var passwordOk = await users.CheckPasswordAsync(user, Password ?? "");
        var digits = (Code ?? "").Trim().All(char.IsAsciiDigit);
        var codeOk = passwordOk && (digits ? await twoFactor.VerifyCodeAsync(user, Code, Aborted) : await twoFactor.RedeemRecoveryCodeAsync(user, Code, Aborted));
        Password = Code = null;
        if (!passwordOk || !codeOk)
        {
            await lockout.FailedAsync(user);
            await throttle.CountAsync(attempt);
            ModelState.AddModelError(string.Empty, "The password or the code is not right.");
            return;
        }
        await throttle.ForgiveAsync(attempt);
        if (!await lockout.SucceededAsync(user))
        {
            ModelState.AddModelError(string.Empty, "The account is locked after too many wrong attempts. Try again later.");
            return;
        }
        await twoFactor.DisableAsync(user, Aborted);
        Notice = "Two-factor authentication is off.";
        await log.RecordAsync(user.Id, SecurityEventKind.TwoFactorDisabled, Aborted);
        await mail.Notice(user.Email!, "two-factor-disabled", "Two-factor authentication is off",
            "Two-factor authentication was turned off for your ClippyBot account. Signing in needs only your password now.");
    });

    /// <summary>ASVS 7.4.3: after turning 2FA on, every other session can be ended; this browser stays signed in.</summary>
    public Task<IActionResult> OnPostEndOtherSessionsAsync() => WithUserAsync(async user =>
    {
        await revoker.RevokeAllAsync(user, Aborted);
        await signIn.RefreshSignInAsync(user);
        Notice = "Every other session was signed out.";
        await log.RecordAsync(user.Id, SecurityEventKind.OtherSessionsEnded, Aborted);
    });

    private async Task<IActionResult> WithUserAsync(Func<ApplicationUser, Task> action)
    {
        var user = await users.GetUserAsync(User);
        if (user is null)
        {
            return Challenge();
        }
        await action(user);
        user = await users.FindByIdAsync(user.Id.ToString()) ?? user;
        Enabled = user.TwoFactorEnabled;
        RemainingRecoveryCodes = Enabled ? await twoFactor.RemainingRecoveryCodesAsync(user.Id, Aborted) : 0;
        PendingSecret = !Enabled && await twoFactor.PendingSecretAsync(user, Aborted) is { } secret ? Crypto.Totp.ToBase32(secret) : null;
        if (!ModelState.IsValid)
        {
            Response.StatusCode = StatusCodes.Status400BadRequest;
        }
        return Page();
    }
}
