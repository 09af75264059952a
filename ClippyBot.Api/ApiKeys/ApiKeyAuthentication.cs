using ClippyBot.Contracts;
using System.Security.Claims;
using System.Text.Encodings.Web;
using ClippyBot.Api.Data;
using Microsoft.AspNetCore.Authentication;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.ApiKeys;

/// <summary>Claims of an API-key caller; everything an endpoint needs to confine it to its workspace and scopes.</summary>
public static class ApiKeyClaims
{
    public const string Scheme = "ApiKey";
    public const string KeyId = "api_key_id";
    public const string WorkspaceId = "workspace_id";
    public const string Scope = "api_key_scope";

    /// <summary>The person who created the key: its permissions never exceed that person's current role.</summary>
    public const string CreatedBy = "api_key_created_by";

    /// <summary>When the key was created (Unix seconds): a "sign out everywhere" of its creator after this ends it.</summary>
    public const string CreatedAt = "api_key_created_at";

    public static bool IsApiKey(this ClaimsPrincipal user) => user.HasClaim(c => c.Type == KeyId);
}

/// <summary>
/// Authenticates <c>Authorization: Bearer cbk_…</c>: looks the key up by its public id, compares the keyed hash in
/// constant time, refuses revoked and expired keys with their own problem types, and records last use (at most once a
/// minute per key, so busy keys do not write on every request).
/// </summary>
internal sealed class ApiKeyAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder,
    ApiDbContext db, ApiKeySecrets secrets, TimeProvider time)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    private const string FailureKey = "api-key-failure";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (!header.StartsWith("Bearer " + ApiKeySecrets.Prefix, StringComparison.Ordinal))
        {
            return AuthenticateResult.NoResult();
        }
        var key = header["Bearer ".Length..].Trim();
        var stored = await Find(key);
        if (stored is null)
        {
            return Fail(ProblemTypes.ApiKeyInvalid, "The API key is not valid.");
        }
        var now = time.GetUtcNow();
        if (stored.RevokedAt is not null)
        {
            return Fail(ProblemTypes.ApiKeyRevoked, "The API key has been revoked.");
        }
        if (stored.ExpiresAt <= now)
        {
            return Fail(ProblemTypes.ApiKeyExpired, "The API key has expired; create a new one.");
        }
        if (stored.LastUsedAt is null || now - stored.LastUsedAt > TimeSpan.FromMinutes(1))
        {
            var ip = Context.Connection.RemoteIpAddress?.ToString();
            await db.ApiKeys.Where(k => k.Id == stored.Id)
                .ExecuteUpdateAsync(s => s.SetProperty(k => k.LastUsedAt, now).SetProperty(k => k.LastUsedIp, ip), Context.RequestAborted);
        }
        var identity = new ClaimsIdentity(ApiKeyClaims.Scheme, "name", "role");
        identity.AddClaim(new Claim(ApiKeyClaims.KeyId, stored.Id.ToString()));
        identity.AddClaim(new Claim(ApiKeyClaims.WorkspaceId, stored.WorkspaceId.ToString()));
        identity.AddClaim(new Claim("name", stored.Name));
        identity.AddClaim(new Claim(ApiKeyClaims.CreatedBy, stored.CreatedBy));
        identity.AddClaim(new Claim(ApiKeyClaims.CreatedAt, stored.CreatedAt.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)));
        foreach (var scope in stored.Scopes)
        {
            identity.AddClaim(new Claim(ApiKeyClaims.Scope, scope.ToString()));
        }
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), ApiKeyClaims.Scheme));
    }

    protected override async Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var (type, detail) = Context.Items[FailureKey] as (string, string)? ?? ("api-key-invalid", "A valid API key is required.");
        Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
        await Results.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "API key refused", detail: detail,
            type: type).ExecuteAsync(Context);
    }

    private async Task<ApiKey?> Find(string key)
    {
        if (!ApiKeySecrets.TryGetPublicId(key, out var publicId))
        {
            secrets.Hash(key); // same cost as a lookup miss
            return null;
        }
        var stored = await db.ApiKeys.AsNoTracking().SingleOrDefaultAsync(k => k.PublicId == publicId, Context.RequestAborted);
        // Always compute the MAC, so an unknown id costs what a wrong secret costs.
        var matches = secrets.Verify(key, stored?.SecretHash ?? new byte[32]);
        return stored is not null && matches ? stored : null;
    }

    private AuthenticateResult Fail(string type, string detail)
    {
        Context.RequestServices.GetRequiredService<ClippyBot.ServiceDefaults.SecurityMetrics>().AuthenticationFailed(type.Replace('-', '_'));
        Context.Items[FailureKey] = (type, detail);
        return AuthenticateResult.Fail(detail);
    }
}
