using ClippyBot.Identity.Crypto;
using ClippyBot.Identity.Data;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Identity.AccountSecurity;

/// <summary>
/// Single-use emailed tokens: 256 random bits, stored as a keyed hash, valid for a configured time. Issuing one kills the
/// user's earlier ones of the same purpose; redeeming deletes it (so a second use finds nothing); a password change kills
/// the user's reset tokens.
/// </summary>
public sealed class AccountTokens(IdentityDataContext db, AccountSecrets secrets, TimeProvider time)
{
    public async Task<string> IssueAsync(Guid userId, string purpose, TimeSpan lifetime, CancellationToken ct)
    {
        var token = SecretHasher.NewSecret();
        var now = time.GetUtcNow();
        await db.AccountTokens.Where(t => t.UserId == userId && t.Purpose == purpose).ExecuteDeleteAsync(ct);
        db.AccountTokens.Add(new AccountToken
        {
            Id = Guid.NewGuid(), UserId = userId, Purpose = purpose, Hash = secrets.Hasher.Fingerprint(token), CreatedAt = now, ExpiresAt = now + lifetime,
        });
        await db.SaveChangesAsync(ct);
        return token;
    }

    /// <summary>The token's user if it is valid for <paramref name="purpose"/>; it is then spent.</summary>
    public async Task<Guid?> RedeemAsync(string? token, string purpose, CancellationToken ct)
    {
        if (await FindAsync(token, purpose, ct) is not { } row)
        {
            return null;
        }
        // Deleting is the redemption: of two concurrent uses only one deletes the row.
        var spent = await db.AccountTokens.Where(t => t.Id == row.Id).ExecuteDeleteAsync(ct);
        return spent == 1 ? row.UserId : null;
    }

    /// <summary>Whether the token is currently valid, without spending it (to show a form before the user acts).</summary>
    public async Task<bool> IsValidAsync(string? token, string purpose, CancellationToken ct) => await PeekAsync(token, purpose, ct) is not null;

    /// <summary>The user a valid token belongs to, without spending it.</summary>
    public async Task<Guid?> PeekAsync(string? token, string purpose, CancellationToken ct) => (await FindAsync(token, purpose, ct))?.UserId;

    /// <summary>At most one mail a minute per account and purpose, so no form can flood an inbox.</summary>
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromMinutes(1);

    /// <summary>Whether a token of <paramref name="purpose"/> was issued to the user less than <see cref="MinimumInterval"/> ago.</summary>
    public Task<bool> IssuedRecentlyAsync(Guid userId, string purpose, CancellationToken ct)
    {
        var recent = time.GetUtcNow() - MinimumInterval;
        return db.AccountTokens.AnyAsync(t => t.UserId == userId && t.Purpose == purpose && t.CreatedAt > recent, ct);
    }

    public Task RevokeAllAsync(Guid userId, string purpose, CancellationToken ct) =>
        db.AccountTokens.Where(t => t.UserId == userId && t.Purpose == purpose).ExecuteDeleteAsync(ct);

    private async Task<AccountToken?> FindAsync(string? token, string purpose, CancellationToken ct)
    {
        if (string.IsNullOrEmpty(token) || token.Length > 100)
        {
            return null;
        }
        var hash = secrets.Hasher.Fingerprint(token);
        var now = time.GetUtcNow();
        return await db.AccountTokens.AsNoTracking()
            .SingleOrDefaultAsync(t => t.Hash == hash && t.Purpose == purpose && t.ExpiresAt > now, ct);
    }
}
