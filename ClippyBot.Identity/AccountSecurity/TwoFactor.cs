using System.Security.Cryptography;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Data;
using Microsoft.EntityFrameworkCore;
using OtpNet;

namespace ClippyBot.Identity.AccountSecurity;

/// <summary>
/// TOTP two-factor authentication: enrolment (secret sealed at rest, on only after a correct code), verification with
/// replay protection, and recovery codes (10 × 80 bits, hashes only, each usable once).
/// </summary>
public sealed class TwoFactor(IdentityDataContext db, AccountSecrets secrets, TimeProvider time)
{
    public const int RecoveryCodeCount = 10;

    /// <summary>Starts (or restarts) enrolment: a new secret, stored sealed; two-factor stays off until confirmed.</summary>
    public async Task<byte[]> BeginEnrolmentAsync(ApplicationUser user, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (user.TwoFactorEnabled)
        {
            throw new InvalidOperationException("Two-factor authentication is already on.");
        }
        var secret = Crypto.Totp.NewSecret();
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s
            .SetProperty(u => u.TotpSecret, secrets.SealTotpSecret(secret, user.Id))
            .SetProperty(u => u.TotpLastStep, 0L), ct);
        return secret;
    }

    /// <summary>The pending secret of an enrolment in progress (to show it again), or null.</summary>
    public async Task<byte[]?> PendingSecretAsync(ApplicationUser user, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(user);
        var row = await db.Users.AsNoTracking().Where(u => u.Id == user.Id).Select(u => new { u.TotpSecret, u.TwoFactorEnabled }).SingleAsync(ct);
        return row.TotpSecret is null || row.TwoFactorEnabled ? null : secrets.OpenTotpSecret(row.TotpSecret, user.Id);
    }

    /// <summary>Turns two-factor on when <paramref name="code"/> is right for the pending secret; returns the recovery codes.</summary>
    public async Task<IReadOnlyList<string>?> ConfirmEnrolmentAsync(ApplicationUser user, string? code, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (await PendingSecretAsync(user, ct) is not { } secret || Crypto.Totp.Verify(secret, code, time.GetUtcNow(), 0) is not { } step)
        {
            return null;
        }
        await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s
            .SetProperty(u => u.TwoFactorEnabled, true)
            .SetProperty(u => u.TotpLastStep, step)
            .SetProperty(u => u.ConcurrencyStamp, Guid.NewGuid().ToString()), ct);
        user.TwoFactorEnabled = true;
        return await RegenerateRecoveryCodesAsync(user, ct);
    }

    /// <summary>True when <paramref name="code"/> is a current TOTP code not used before (the step is claimed atomically).</summary>
    public async Task<bool> VerifyCodeAsync(ApplicationUser user, string? code, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(user);
        var row = await db.Users.AsNoTracking().Where(u => u.Id == user.Id).Select(u => new { u.TotpSecret, u.TotpLastStep, u.TwoFactorEnabled }).SingleAsync(ct);
        if (!row.TwoFactorEnabled || row.TotpSecret is null
            || Crypto.Totp.Verify(secrets.OpenTotpSecret(row.TotpSecret, user.Id), code, time.GetUtcNow(), row.TotpLastStep) is not { } step)
        {
            return false;
        }
        // Of two requests with the same code only one moves the last step forward.
        return await db.Users.Where(u => u.Id == user.Id && u.TotpLastStep < step).ExecuteUpdateAsync(s => s.SetProperty(u => u.TotpLastStep, step), ct) == 1;
    }

    /// <summary>True when <paramref name="code"/> is one of the user's unused recovery codes; it is spent.</summary>
    public async Task<bool> RedeemRecoveryCodeAsync(ApplicationUser user, string? code, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(user);
        if (NormalizeRecoveryCode(code) is not { } normalized)
        {
            return false;
        }
        var hash = secrets.Hasher.Fingerprint(normalized);
        return await db.RecoveryCodes.Where(c => c.UserId == user.Id && c.Hash == hash).ExecuteDeleteAsync(ct) == 1;
    }

    public Task<int> RemainingRecoveryCodesAsync(Guid userId, CancellationToken ct) => db.RecoveryCodes.CountAsync(c => c.UserId == userId, ct);

    /// <summary>A new set of codes; the old set dies. Shown to the user once — only hashes are kept.</summary>
    public async Task<IReadOnlyList<string>> RegenerateRecoveryCodesAsync(ApplicationUser user, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(user);
        var codes = Enumerable.Range(0, RecoveryCodeCount).Select(_ => NewRecoveryCode()).ToList();
        var now = time.GetUtcNow();
        await InTransactionAsync(async () =>
        {
            await db.RecoveryCodes.Where(c => c.UserId == user.Id).ExecuteDeleteAsync(ct);
            db.RecoveryCodes.AddRange(codes.Select(c => new RecoveryCode { UserId = user.Id, Hash = secrets.Hasher.Fingerprint(NormalizeRecoveryCode(c)!), CreatedAt = now }));
            await db.SaveChangesAsync(ct);
        }, ct);
        return codes;
    }

    /// <summary>Turns two-factor off: secret and recovery codes are deleted.</summary>
    public async Task DisableAsync(ApplicationUser user, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(user);
        await InTransactionAsync(async () =>
        {
            await db.RecoveryCodes.Where(c => c.UserId == user.Id).ExecuteDeleteAsync(ct);
            await db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(s => s
                .SetProperty(u => u.TwoFactorEnabled, false)
                .SetProperty(u => u.TotpSecret, (byte[]?)null)
                .SetProperty(u => u.TotpLastStep, 0L)
                .SetProperty(u => u.ConcurrencyStamp, Guid.NewGuid().ToString()), ct);
        }, ct);
        user.TwoFactorEnabled = false;
    }

    /// <summary>All or nothing, under the connection's retrying execution strategy (which retries the whole unit).</summary>
    private Task InTransactionAsync(Func<Task> work, CancellationToken ct) =>
        db.Database.CreateExecutionStrategy().ExecuteAsync(async () =>
        {
            db.ChangeTracker.Clear();
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await work();
            await tx.CommitAsync(ct);
        });

    /// <summary>80 random bits as 16 base32 characters in four groups: <c>abcd-efgh-ijkl-mnop</c>.</summary>
    private static string NewRecoveryCode()
    {
        var text = Base32Encoding.ToString(RandomNumberGenerator.GetBytes(10)).ToLowerInvariant();
        return string.Join('-', text.Chunk(4).Select(c => new string(c)));
    }

    private static string? NormalizeRecoveryCode(string? code)
    {
        var compact = code?.Replace("-", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal).ToUpperInvariant();
        return compact is { Length: 16 } && compact.All(c => c is >= 'A' and <= 'Z' or >= '2' and <= '7') ? compact : null;
    }
}
