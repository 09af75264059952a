using ClippyBot.Identity.Data;
using ClippyBot.ServiceDefaults;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.Accounts;

/// <summary>
/// Per-account lockout that holds under concurrency. ASP.NET Core Identity checks the lockout, verifies, then counts the
/// failure through an update guarded by the concurrency stamp: 30 guesses sent at once all pass the check before any is
/// counted, and most of the counts are lost to concurrency failures. Here every credential check (password, TOTP or
/// recovery code, password re-entry) first reserves one of the account's <c>MaxFailedAccessAttempts</c> with a single
/// conditional <c>UPDATE</c> — refused while the account is locked or the attempts are used up — so at most that many
/// wrong guesses are ever evaluated per lockout window; a failure that reaches the limit locks the account in one
/// statement; a success gives the attempts back, unless the account was locked meanwhile (then it is refused too). Correct
/// sign-ins in flight hold attempts too, so the sign-in manager lets only a few checks of one account run at a time.
/// The bookkeeping ignores the request's cancellation: a client that disconnects mid-check must not leave its attempt
/// reserved for ever (or skip the lock).
/// </summary>
public sealed class AccountLockout(IdentityDataContext db, IOptions<IdentityOptions> identity, TimeProvider time, SecurityMetrics metrics)
{
    /// <summary>Takes one attempt; false when the account is locked or its attempts are all in use (nothing is evaluated then).</summary>
    public async Task<bool> TryReserveAsync(ApplicationUser user, string kind)
    {
        var ct = CancellationToken.None;
        ArgumentNullException.ThrowIfNull(user);
        var now = time.GetUtcNow();
        var max = identity.Value.Lockout.MaxFailedAccessAttempts;
        var reserved = await db.Users
            .Where(u => u.Id == user.Id && (u.LockoutEnd == null || u.LockoutEnd <= now) && u.AccessFailedCount < max)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.AccessFailedCount, u => u.AccessFailedCount + 1), ct) == 1;
        if (reserved)
        {
            metrics.CredentialEvaluated(kind);
        }
        return reserved;
    }

    /// <summary>The reserved attempt was wrong: it stays counted, and the one that reaches the limit locks the account.</summary>
    public async Task FailedAsync(ApplicationUser user)
    {
        var ct = CancellationToken.None;
        ArgumentNullException.ThrowIfNull(user);
        var options = identity.Value.Lockout;
        var until = time.GetUtcNow() + options.DefaultLockoutTimeSpan;
        await db.Users
            .Where(u => u.Id == user.Id && u.LockoutEnabled && u.AccessFailedCount >= options.MaxFailedAccessAttempts)
            .ExecuteUpdateAsync(s => s.SetProperty(u => u.LockoutEnd, until).SetProperty(u => u.AccessFailedCount, 0), ct);
    }

    /// <summary>
    /// The reserved attempt was right; false when the account got locked meanwhile. A complete sign-in clears the count;
    /// a password that still needs its second factor gives back only its own attempt — otherwise knowing the password
    /// would reset the count of wrong codes and make the second factor guessable without end.
    /// </summary>
    public async Task<bool> SucceededAsync(ApplicationUser user, bool complete = true)
    {
        ArgumentNullException.ThrowIfNull(user);
        var now = time.GetUtcNow();
        var active = db.Users.Where(u => u.Id == user.Id && (u.LockoutEnd == null || u.LockoutEnd <= now));
        return complete
            ? await active.ExecuteUpdateAsync(s => s.SetProperty(u => u.AccessFailedCount, 0), CancellationToken.None) == 1
            : await active.ExecuteUpdateAsync(s => s.SetProperty(u => u.AccessFailedCount, u => u.AccessFailedCount > 0 ? u.AccessFailedCount - 1 : 0), CancellationToken.None) == 1;
    }
}
