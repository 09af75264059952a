using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Identity;

namespace ClippyBot.Identity.Containment;

/// <summary>
/// What an administrator does to a compromised account, in one place for the admin pages and the internal containment API:
/// end every session (refresh tokens, cookies, and — through revocation markers — outstanding access tokens), lock, unlock.
/// </summary>
public sealed class AccountContainment(UserManager<ApplicationUser> users, SessionRevoker revoker)
{
    public Task RevokeSessionsAsync(ApplicationUser user, CancellationToken ct) => revoker.RevokeAllAsync(user, ct);

    /// <summary>The account cannot sign in until unlocked, and every session ends now.</summary>
    public async Task LockAsync(ApplicationUser user, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(user);
        await users.SetLockoutEnabledAsync(user, true);
        await users.SetLockoutEndDateAsync(user, DateTimeOffset.MaxValue);
        await revoker.RevokeAllAsync(user, ct);
    }

    public async Task UnlockAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        await users.SetLockoutEndDateAsync(user, null);
        await users.ResetAccessFailedCountAsync(user);
    }
}
