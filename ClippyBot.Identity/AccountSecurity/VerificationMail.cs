using ClippyBot.Identity.Accounts;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.AccountSecurity;

/// <summary>Sends (or re-sends) the address-verification link; at most one per minute per account, so "resend" cannot flood an inbox.</summary>
public sealed class VerificationMail(AccountTokens tokens, AccountMail mail, IOptions<AccountSecurityOptions> options)
{
    /// <summary>False when nothing was sent: the address is already verified, or a link went out less than a minute ago.</summary>
    public async Task<bool> SendAsync(ApplicationUser user, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (user.EmailConfirmed || user.Email is null || await tokens.IssuedRecentlyAsync(user.Id, AccountTokenPurpose.VerifyEmail, ct))
        {
            return false;
        }
        await mail.VerifyEmail(user.Email, await tokens.IssueAsync(user.Id, AccountTokenPurpose.VerifyEmail, options.Value.EmailVerificationLifetime, ct));
        return true;
    }
}
