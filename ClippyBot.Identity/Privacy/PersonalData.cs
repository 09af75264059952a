using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;

namespace ClippyBot.Identity.Privacy;

/// <summary>
/// Identity's part of a person's data (GDPR Art. 15 and 17): what it holds about an account, and its erasure. Credentials
/// (password hash, TOTP secret, recovery-code hashes, reset links) are never exported: they are secrets, not information
/// about the person, and an export file is easier to steal than the database.
/// </summary>
public sealed class PersonalData(
    IdentityDataContext db,
    UserManager<ApplicationUser> users,
    SessionRevoker revoker,
    IOpenIddictAuthorizationManager authorizations,
    IOpenIddictTokenManager tokens,
    Apps.AppRegistry apps,
    TimeProvider time)
{
    public sealed record AccountRecord(Guid Id, string? Email, bool EmailConfirmed, string? UserName, DateTimeOffset CreatedAt,
        bool TwoFactorEnabled, int RecoveryCodesLeft, DateTimeOffset? LockedUntil);

    public sealed record SessionRecord(Guid Id, string ClientId, string UserAgent, string IpAddress, DateTimeOffset CreatedAt,
        DateTimeOffset LastSeenAt, DateTimeOffset? EndedAt);

    public sealed record SecurityEventRecord(DateTimeOffset At, string Kind, string IpAddress);

    public sealed record ConnectedAppRecord(string ClientId, string Name, string Scopes, DateTimeOffset GrantedAt);

    public sealed record DeveloperAppRecord(string ClientId, string Name, DateTimeOffset? CreatedAt, IReadOnlyList<string> RedirectUris);

    public sealed record IdentityExport(AccountRecord Account, IReadOnlyList<SessionRecord> Sessions, IReadOnlyList<SecurityEventRecord> SecurityEvents,
        IReadOnlyList<ConnectedAppRecord> ConnectedApps, IReadOnlyList<DeveloperAppRecord> DeveloperApps);

    public async Task<IdentityExport?> ExportAsync(Guid userId, CancellationToken ct)
    {
        var user = await db.Users.AsNoTracking().SingleOrDefaultAsync(u => u.Id == userId, ct);
        if (user is null)
        {
            return null;
        }
        var recoveryCodes = await db.RecoveryCodes.CountAsync(c => c.UserId == userId, ct);
        var sessions = await db.UserSessions.AsNoTracking().Where(s => s.UserId == userId).OrderBy(s => s.CreatedAt)
            .Select(s => new SessionRecord(s.Id, s.ClientId, s.UserAgent, s.IpAddress, s.CreatedAt, s.LastSeenAt, s.EndedAt)).ToListAsync(ct);
        var events = await db.SecurityEvents.AsNoTracking().Where(e => e.UserId == userId).OrderBy(e => e.Id)
            .Select(e => new SecurityEventRecord(e.At, e.Kind, e.IpAddress)).ToListAsync(ct);
        var account = new AccountRecord(user.Id, user.Email, user.EmailConfirmed, user.UserName, user.CreatedAt, user.TwoFactorEnabled,
            recoveryCodes, user.LockoutEnd is { } end && end > time.GetUtcNow() ? end : null);
        var connected = (await apps.ConnectedAsync(userId, ct)).Select(c => new ConnectedAppRecord(c.Consent.ClientId, c.Name, c.Consent.Scopes, c.Consent.GrantedAt)).ToList();
        var developed = (await apps.ListOwnedAsync(userId, ct)).Select(a => new DeveloperAppRecord(a.ClientId, a.Name, a.CreatedAt, a.RedirectUris)).ToList();
        return new IdentityExport(account, sessions, events, connected, developed);
    }

    /// <summary>
    /// Ends every session (outstanding access tokens die through the revocation marker), then deletes the account and every
    /// row that names it. The account's id survives only as the pseudonymous subject other services' logs refer to.
    /// False when no such account exists (already erased).
    /// </summary>
    public async Task<bool> EraseAsync(Guid userId, CancellationToken ct)
    {
        if (await users.FindByIdAsync(userId.ToString()) is not { } user)
        {
            return false;
        }
        await revoker.RevokeAllAsync(user, ct);
        // The person's apps go with them (a developer who is gone cannot answer for them).
        await apps.DeleteAllOwnedAsync(userId, ct);
        var subject = userId.ToString();
        // Revoked above; deleted now, so no row keeps the subject's client history.
        await foreach (var authorization in authorizations.FindBySubjectAsync(subject, ct))
        {
            await authorizations.DeleteAsync(authorization, ct);
        }
        await foreach (var token in tokens.FindBySubjectAsync(subject, ct))
        {
            await tokens.DeleteAsync(token, ct);
        }
        var strategy = db.Database.CreateExecutionStrategy();
        await strategy.ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            await db.UserSessions.Where(s => s.UserId == userId).ExecuteDeleteAsync(ct);
            await db.SecurityEvents.Where(e => e.UserId == userId).ExecuteDeleteAsync(ct);
            await db.AccountTokens.Where(t => t.UserId == userId).ExecuteDeleteAsync(ct);
            await db.RecoveryCodes.Where(c => c.UserId == userId).ExecuteDeleteAsync(ct);
            await db.AppConsents.Where(c => c.UserId == userId).ExecuteDeleteAsync(ct);
            await db.InitialAccessTokens.Where(t => t.OwnerId == userId).ExecuteDeleteAsync(ct);
            // The record of their actions on apps stays, without naming them.
            await db.AppAuditEntries.Where(e => e.ActorId == userId).ExecuteUpdateAsync(e => e.SetProperty(x => x.ActorId, (Guid?)null).SetProperty(x => x.IpAddress, ""), ct);
            // Logins, claims, user tokens and roles cascade with the user row.
            await db.Users.Where(u => u.Id == userId).ExecuteDeleteAsync(ct);
            await tx.CommitAsync(ct);
        });
        return true;
    }
}
