using System.Globalization;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.Accounts;

/// <summary>
/// When the person last proved a credential (password, second factor), as the <c>auth_time</c> claim of the browser session.
/// The session cookie is re-issued on every request (sliding expiry, security-stamp refresh), so its issue time says only
/// "last activity"; this claim is set at sign-in and carried unchanged through every refresh. It is what <c>max_age</c>,
/// token <c>auth_time</c>, step-up checks and the session's absolute lifetime are measured from.
/// </summary>
public static class AuthenticationTime
{
    public const string ClaimType = OpenIddict.Abstractions.OpenIddictConstants.Claims.AuthenticationTime;

    public static Claim Claim(DateTimeOffset when) =>
        new(ClaimType, when.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64);

    /// <summary>The session's authentication time, or null when it carries none.</summary>
    public static DateTimeOffset? Of(ClaimsPrincipal? principal) =>
        principal?.FindFirst(ClaimType)?.Value is { } text && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds)
            ? DateTimeOffset.FromUnixTimeSeconds(seconds)
            : null;

    /// <summary>True when the credential was proven within <paramref name="window"/>.</summary>
    public static bool IsRecent(ClaimsPrincipal? principal, TimeSpan window, TimeProvider time) =>
        Of(principal) is { } at && time.GetUtcNow() - at <= window;

    /// <summary>
    /// Cookie validation: a session past its absolute lifetime (or from before this claim existed) is rejected, however
    /// active; otherwise the security stamp is checked as usual.
    /// </summary>
    public static async Task ValidateSessionAsync(CookieValidatePrincipalContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var services = context.HttpContext.RequestServices;
        var lifetime = services.GetRequiredService<IOptions<AccountSecurity.AccountSecurityOptions>>().Value.SessionAbsoluteLifetime;
        if (Of(context.Principal) is not { } at || services.GetRequiredService<TimeProvider>().GetUtcNow() - at > lifetime)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(IdentityConstants.ApplicationScheme);
            return;
        }
        await SecurityStampValidator.ValidatePrincipalAsync(context);
    }
}

/// <summary>
/// This browser's sign-in, as the <c>bsid</c> claim of its session cookie (new at each sign-in, carried through refreshes):
/// logins of the same browser into the same client — silent <c>prompt=none</c> renewals — reuse one session instead of
/// adding one per renewal.
/// </summary>
public static class BrowserSession
{
    public const string ClaimType = "bsid";

    public static Claim NewClaim() => new(ClaimType, Guid.NewGuid().ToString("N"));

    public static string? Of(ClaimsPrincipal? principal) => principal?.FindFirst(ClaimType)?.Value;
}

/// <summary>
/// Identity's sign-in manager: every session it creates carries <see cref="AuthenticationTime"/>, and password checks go
/// through <see cref="AccountLockout"/> (a lockout that holds under concurrent guesses).
/// </summary>
public sealed class ClippySignInManager(
    UserManager<ApplicationUser> users,
    IHttpContextAccessor contextAccessor,
    IUserClaimsPrincipalFactory<ApplicationUser> claimsFactory,
    IOptions<IdentityOptions> optionsAccessor,
    ILogger<SignInManager<ApplicationUser>> logger,
    IAuthenticationSchemeProvider schemes,
    IUserConfirmation<ApplicationUser> confirmation,
    TimeProvider time,
    AccountLockout lockout)
    : SignInManager<ApplicationUser>(users, contextAccessor, claimsFactory, optionsAccessor, logger, schemes, confirmation)
{
    /// <summary>
    /// A sign-in names its authentication time and methods; a refresh of the same person's session (after a password change
    /// or turning on 2FA) keeps the ones the session had, so re-issuing a cookie never makes an old login look fresh.
    /// </summary>
    public override Task SignInWithClaimsAsync(ApplicationUser user, AuthenticationProperties? authenticationProperties, IEnumerable<Claim> additionalClaims)
    {
        ArgumentNullException.ThrowIfNull(user);
        var claims = additionalClaims.ToList();
        var current = Context.User;
        var same = current.Identity?.IsAuthenticated == true && current.FindFirst(OpenIddict.Abstractions.OpenIddictConstants.Claims.Subject)?.Value == user.Id.ToString();
        // A fresh sign-in names its time (and methods) itself; anything else is a refresh of the session there is.
        if (!claims.Any(c => c.Type == AuthenticationTime.ClaimType))
        {
            claims.Add(same && AuthenticationTime.Of(current) is { } at ? AuthenticationTime.Claim(at) : AuthenticationTime.Claim(time.GetUtcNow()));
            if (same && current.FindFirst(BrowserSession.ClaimType) is { } browser)
            {
                claims.Add(new Claim(BrowserSession.ClaimType, browser.Value));
            }
            if (same)
            {
                var methods = claims.Where(c => c.Type == "amr").Select(c => c.Value).ToHashSet(StringComparer.Ordinal);
                claims.AddRange(current.FindAll("amr").Where(c => methods.Add(c.Value)).Select(c => new Claim("amr", c.Value)));
            }
        }
        if (!claims.Any(c => c.Type == BrowserSession.ClaimType))
        {
            claims.Add(BrowserSession.NewClaim());
        }
        return base.SignInWithClaimsAsync(user, authenticationProperties, claims);
    }

    /// <summary>
    /// Striped per-account gates: one more check in flight than there are cores keeps both cores hashing while one check
    /// waits for its database round trip, and stays below any sensible lockout limit.
    /// </summary>
    private static readonly SemaphoreSlim[] AccountGates = [.. Enumerable.Range(0, 64).Select(_ => new SemaphoreSlim(Environment.ProcessorCount + 1))];

    public override async Task<SignInResult> CheckPasswordSignInAsync(ApplicationUser user, string password, bool lockoutOnFailure)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (!lockoutOnFailure)
        {
            return await base.CheckPasswordSignInAsync(user, password, lockoutOnFailure);
        }
        if (!await CanSignInAsync(user))
        {
            return SignInResult.NotAllowed;
        }
        // At most a few checks of one account at a time on this replica, so correct sign-ins in flight never hold enough
        // of the account's attempts to look like an attack; the attempt is reserved before the hash, outside the cores.
        var gate = AccountGates[(user.Id.GetHashCode() & int.MaxValue) % AccountGates.Length];
        await gate.WaitAsync();
        bool ok;
        try
        {
            if (!await lockout.TryReserveAsync(user, "password"))
            {
                return SignInResult.LockedOut;
            }
            ok = await UserManager.CheckPasswordAsync(user, password);
        }
        finally
        {
            gate.Release();
        }
        if (!ok)
        {
            await lockout.FailedAsync(user);
            return SignInResult.Failed;
        }
        // Locked by other guesses while this one was hashed: refused as well.
        return await lockout.SucceededAsync(user, complete: !user.TwoFactorEnabled) ? SignInResult.Success : SignInResult.LockedOut;
    }
}
