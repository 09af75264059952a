using System.Security.Claims;
using ClippyBot.Identity.Accounts;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.AccountSecurity;

/// <summary>
/// The step between a correct password and the second factor: who passed the password, kept in Identity's short-lived
/// two-factor cookie (<see cref="AccountSecurityOptions.SecondFactorWindow"/>), then turned into a session whose
/// <c>amr</c> says how the user proved themselves (RFC 8176: <c>pwd</c> plus <c>otp</c> and <c>mfa</c>).
/// </summary>
public sealed class SecondFactorLogin(SignInManager<ApplicationUser> signIn, TimeProvider time, IOptions<AccountSecurityOptions> options)
{
    public Task BeginAsync(HttpContext context, ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(user);
        var identity = new ClaimsIdentity([new Claim(ClaimTypes.Name, user.Id.ToString())], IdentityConstants.TwoFactorUserIdScheme);
        return context.SignInAsync(IdentityConstants.TwoFactorUserIdScheme, new ClaimsPrincipal(identity),
            new AuthenticationProperties { IsPersistent = false, ExpiresUtc = time.GetUtcNow() + options.Value.SecondFactorWindow });
    }

    /// <summary>The user who passed the password step, or null when there is none (or it expired).</summary>
    public Task<ApplicationUser?> PendingUserAsync() => signIn.GetTwoFactorAuthenticationUserAsync();

    /// <summary>
    /// Ends the password step and signs the user in; <paramref name="methods"/> are the second factor's <c>amr</c> values
    /// (<c>otp</c> for an authenticator code; none for a recovery code, which RFC 8176 has no name for — <c>mfa</c> says enough).
    /// </summary>
    public async Task CompleteAsync(HttpContext context, ApplicationUser user, params string[] methods)
    {
        ArgumentNullException.ThrowIfNull(context);
        await context.SignOutAsync(IdentityConstants.TwoFactorUserIdScheme);
        List<string> amr = ["pwd", .. methods, "mfa"];
        await signIn.SignInWithClaimsAsync(user, isPersistent: false, [.. amr.Select(m => new Claim("amr", m)), AuthenticationTime.Claim(time.GetUtcNow())]);
    }
}
