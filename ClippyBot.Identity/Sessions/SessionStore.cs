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
    IOpenIddictApplicationManager applications,
    IOpenIddictAuthorizationManager authorizations,
    IOpenIddictTokenManager tokens,
    RevocationMarkers markers,
    TimeProvider time)
{
    public const string SessionIdClaim = "sid";

    /// <summary>Starts a session for a login into <paramref name="clientId"/>: a permanent authorization and its record.</summary>
    public async Task StartAsync(ClaimsIdentity identity, Guid userId, string clientId, HttpContext http, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(identity);
        ArgumentNullException.ThrowIfNull(http);
        var application = await applications.FindByClientIdAsync(clientId, ct) ?? throw new InvalidOperationException("Unknown client.");
        var authorization = await authorizations.CreateAsync(new ClaimsPrincipal(identity), userId.ToString(),
            (await applications.GetIdAsync(application, ct))!, AuthorizationTypes.Permanent, identity.GetScopes(), ct);
        var authorizationId = (await authorizations.GetIdAsync(authorization, ct))!;
        var now = time.GetUtcNow();
        var session = new UserSession
        {
            Id = Guid.CreateVersion7(),
            UserId = userId,
            ClientId = clientId,
            AuthorizationId = authorizationId,
            UserAgent = Truncate(http.Request.Headers.UserAgent.ToString(), 256),
            IpAddress = http.Connection.RemoteIpAddress?.ToString() ?? "",
            CreatedAt = now,
            LastSeenAt = now,
        };
        db.UserSessions.Add(session);
        await db.SaveChangesAsync(ct);
        identity.SetAuthorizationId(authorizationId);
        identity.SetClaim(SessionIdClaim, session.Id.ToString());
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
        await tokens.RevokeByAuthorizationIdAsync(session.AuthorizationId, ct);
        var authorization = await authorizations.FindByIdAsync(session.AuthorizationId, ct);
        if (authorization is not null)
        {
            await authorizations.TryRevokeAsync(authorization, ct);
        }
        await markers.PublishSessionAsync(session.Id.ToString());
        return true;
    }

    /// <summary>Marks every session of the user ended (their tokens are revoked by <see cref="SessionRevoker"/>).</summary>
    public Task<int> EndAllAsync(Guid userId, CancellationToken ct) =>
        db.UserSessions.Where(s => s.UserId == userId && s.EndedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(x => x.EndedAt, time.GetUtcNow()), ct);

    private static string Truncate(string value, int max) => value.Length <= max ? value : value[..max];
}
