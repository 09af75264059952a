using System.Security.Claims;
using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Sessions;

/// <summary>Creates, lists and ends login sessions; ending one revokes its authorization and every token from it.</summary>
public sealed class SessionStore(
    IdentityDataContext db,
    IOpenIddictAuthorizationManager authorizations,
    IOpenIddictTokenManager tokens,
    RevocationMarkers markers,
    TimeProvider time)
{
    public const string SessionIdClaim = "sid";

    /// <summary>Inside a code only: the browser's user agent and address at authorization, for the session list.</summary>
    public const string DeviceClaim = "session_device";

    public const string AddressClaim = "session_address";

    /// <summary>
    /// Starts the session of a redeemed authorization code (not when a code is merely issued: an abandoned code leaves only
    /// its ad-hoc authorization, which pruning removes). The code's authorization becomes permanent — so a replayed code
    /// still revokes everything issued from it. A silent renewal (<c>prompt=none</c>) from a browser sign-in that already
    /// has a running session with this client takes that session over: its previous authorization and tokens are
    /// revoked, and no row is added per renewal.
    /// </summary>
    public async Task<Guid> StartAsync(ClaimsIdentity identity, Guid userId, string clientId, string? browserSessionId, bool renewal, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(identity);
        var authorizationId = identity.GetAuthorizationId() ?? throw new InvalidOperationException("The code has no authorization.");
        if (await authorizations.FindByIdAsync(authorizationId, ct) is { } authorization)
        {
            var descriptor = new OpenIddictAuthorizationDescriptor();
            await authorizations.PopulateAsync(descriptor, authorization, ct);
            descriptor.Type = AuthorizationTypes.Permanent;
            await authorizations.UpdateAsync(authorization, descriptor, ct);
        }
        var now = time.GetUtcNow();
        // The browser sign-in's newest running session with this client (ordinary sign-ins from one browser may have made several).
        var session = renewal && browserSessionId is not null
            ? await db.UserSessions.Where(s => s.UserId == userId && s.ClientId == clientId && s.BrowserSessionId == browserSessionId && s.EndedAt == null)
                .OrderByDescending(s => s.CreatedAt).FirstOrDefaultAsync(ct)
            : null;
        if (session is not null && session.AuthorizationId != authorizationId)
        {
            // Taken over in one conditional update: of two renewals racing for it, one wins and the other starts its own.
            var previous = session.AuthorizationId;
            var taken = await db.UserSessions.Where(s => s.Id == session.Id && s.AuthorizationId == previous && s.EndedAt == null)
                .ExecuteUpdateAsync(s => s.SetProperty(x => x.AuthorizationId, authorizationId).SetProperty(x => x.LastSeenAt, now), ct);
            if (taken == 1)
            {
                await RevokeAuthorizationAsync(previous, ct);
                return session.Id;
            }
            session = null;
        }
        if (session is null)
        {
            session = new UserSession
            {
                Id = Guid.CreateVersion7(),
                UserId = userId,
                ClientId = clientId,
                AuthorizationId = authorizationId,
                BrowserSessionId = browserSessionId,
                UserAgent = identity.GetClaim(DeviceClaim) ?? "",
                IpAddress = identity.GetClaim(AddressClaim) ?? "",
                CreatedAt = now,
                LastSeenAt = now,
            };
            db.UserSessions.Add(session);
        }
        await db.SaveChangesAsync(ct);
        return session.Id;
    }

    private async Task RevokeAuthorizationAsync(string authorizationId, CancellationToken ct)
    {
        await tokens.RevokeByAuthorizationIdAsync(authorizationId, ct);
        if (await authorizations.FindByIdAsync(authorizationId, ct) is { } authorization)
        {
            await authorizations.TryRevokeAsync(authorization, ct);
        }
    }

    /// <summary>Whether the session still runs (refresh checks it), updating its last-seen time.</summary>
    public async Task<bool> TouchAsync(string? sessionId, CancellationToken ct)
    {
        if (!Guid.TryParse(sessionId, out var id))
        {
            return false;
        }
        var updated = await db.UserSessions
            .Where(s => s.Id == id && s.EndedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.LastSeenAt, time.GetUtcNow()), ct);
        return updated == 1;
    }

    public Task<List<UserSession>> ListActiveAsync(Guid userId, CancellationToken ct) =>
        db.UserSessions.Where(s => s.UserId == userId && s.EndedAt == null)
            .OrderByDescending(s => s.LastSeenAt)
            .ToListAsync(ct);

    /// <summary>Ends one session of <paramref name="userId"/>; false if there is no such running session of theirs.</summary>
    public async Task<bool> EndAsync(Guid userId, Guid sessionId, CancellationToken ct)
    {
        var session = await db.UserSessions.SingleOrDefaultAsync(s => s.Id == sessionId && s.UserId == userId && s.EndedAt == null, ct);
        if (session is null)
        {
            return false;
        }
        session.EndedAt = time.GetUtcNow();
        await db.SaveChangesAsync(ct);
        await RevokeAuthorizationAsync(session.AuthorizationId, ct);
        await markers.PublishSessionAsync(session.Id.ToString());
        return true;
    }

    /// <summary>Marks every session of the user ended and returns their ids (their tokens are revoked by <see cref="Oidc.SessionRevoker"/>).</summary>
    public async Task<IReadOnlyList<Guid>> EndAllAsync(Guid userId, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        // One statement: the sessions ended are exactly the ones returned.
        return await db.Database.SqlQuery<Guid>($"""
            UPDATE "UserSessions" SET "EndedAt" = {now} WHERE "UserId" = {userId} AND "EndedAt" IS NULL RETURNING "Id" AS "Value"
            """).ToListAsync(ct);
    }

    /// <summary>Ends every running session with one client, of every person (the app was suspended or deleted); their ids.</summary>
    public async Task<IReadOnlyList<Guid>> EndAllForClientAsync(string clientId, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        return await db.Database.SqlQuery<Guid>($"""
            UPDATE "UserSessions" SET "EndedAt" = {now} WHERE "ClientId" = {clientId} AND "EndedAt" IS NULL RETURNING "Id" AS "Value"
            """).ToListAsync(ct);
    }

    /// <summary>Ends one person's sessions with one client (they disconnected the app), revoking each session's tokens; their ids.</summary>
    public async Task<IReadOnlyList<Guid>> EndForClientAsync(Guid userId, string clientId, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var ended = await db.UserSessions.Where(s => s.UserId == userId && s.ClientId == clientId && s.EndedAt == null).ToListAsync(ct);
        foreach (var session in ended)
        {
            session.EndedAt = now;
        }
        await db.SaveChangesAsync(ct);
        foreach (var session in ended)
        {
            await RevokeAuthorizationAsync(session.AuthorizationId, ct);
        }
        return [.. ended.Select(s => s.Id)];
    }

    public static string Truncate(string value, int max) => value.Length <= max ? value : value[..max];
}
