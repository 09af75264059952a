using ClippyBot.Identity.Accounts;
using Microsoft.AspNetCore.Identity;
using OpenIddict.Abstractions;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// Ends every session of a user at once: all authorizations and tokens (refresh tokens die immediately), a new security
/// stamp (browser cookies die), and a revocation marker so resource servers drop outstanding access tokens.
/// Used by password change, reset, logout-everywhere and administrators.
/// </summary>
public sealed class SessionRevoker(
    IOpenIddictAuthorizationManager authorizations,
    IOpenIddictTokenManager tokens,
    UserManager<ApplicationUser> users,
    Sessions.SessionStore sessions,
    RevocationMarkers markers)
{
    public async Task RevokeAllAsync(ApplicationUser user, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        var subject = user.Id.ToString();
        var ended = await sessions.EndAllAsync(user.Id, ct);
        await authorizations.RevokeBySubjectAsync(subject, ct);
        await tokens.RevokeBySubjectAsync(subject, ct);
        await users.UpdateSecurityStampAsync(user);
        // The subject's marker (by time) and one per ended session (by id): the latter needs no clock comparison.
        await markers.PublishAllAsync(subject, ended);
    }
}
