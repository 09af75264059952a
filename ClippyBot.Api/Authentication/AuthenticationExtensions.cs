using ClippyBot.Contracts;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using ClippyBot.ServiceDefaults.Authentication;
using StackExchange.Redis;

namespace ClippyBot.Api.Authentication;

/// <summary>
/// Bearer access tokens from Identity, validated locally: signature against Identity's JWKS (found by service
/// discovery), issuer from its discovery document, audience <c>clippybot-api</c>, type <c>at+jwt</c>, lifetime with
/// 30 s of skew. Then the revocation markers: a token of a revoked login is refused within a second of the event.
/// Every endpoint requires an authenticated caller unless it says otherwise.
/// </summary>
public static class AuthenticationExtensions
{
    public const string Audience = Audiences.Api;
    public const string CallerScheme = "Caller";

    public static IHostApplicationBuilder AddApiAuthentication(this IHostApplicationBuilder builder)
    {
        // One entry point: a workspace API key ("Bearer cbk_…") goes to its handler, everything else is a JWT.
        builder.Services.AddAuthentication(CallerScheme)
            .AddPolicyScheme(CallerScheme, "Access token or API key", o => o.ForwardDefaultSelector = http =>
                http.Request.Headers.Authorization.ToString().StartsWith("Bearer " + ApiKeys.ApiKeySecrets.Prefix, StringComparison.Ordinal)
                    ? ApiKeys.ApiKeyClaims.Scheme
                    : JwtBearerDefaults.AuthenticationScheme)
            .AddIdentityAccessTokens(builder, Audience);
        // Endpoints outside a workspace are for people: an API key acts only inside its own workspace.
        builder.Services.AddAuthorizationBuilder()
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser()
                .RequireAssertion(c => !ApiKeys.ApiKeyClaims.IsApiKey(c.User)).Build());
        builder.Services.AddSingleton<RevocationMarkers>();
        builder.Services.AddHostedService<RevocationReconciler>();
        builder.Services.AddSingleton<Audit.LoginObserver>();
        return builder;
    }

    /// <summary>Authentication and the revocation check; authorization comes after rate limiting (see Program).</summary>
    public static WebApplication UseApiAuthentication(this WebApplication app)
    {
        app.UseAuthentication();
        app.Use(RejectRevokedAsync);
        return app;
    }

    /// <summary>
    /// Fail closed: when Redis cannot say whether a token was revoked, the request is refused (503) rather than trusting
    /// the token — otherwise "log out everywhere" would not hold while Redis is down, which is exactly when an attacker
    /// would try. Redis is also where rate limits live, so the Api cannot serve safely without it anyway.
    /// </summary>
    private static async Task RejectRevokedAsync(HttpContext context, RequestDelegate next)
    {
        // Markers are about people: their tokens, and the API keys they created before they ended every session.
        if (context.User.Identity?.IsAuthenticated == true)
        {
            var apiKey = ApiKeys.ApiKeyClaims.IsApiKey(context.User);
            bool revoked;
            try
            {
                revoked = await context.RequestServices.GetRequiredService<RevocationMarkers>().IsRevokedAsync(context.User);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException)
            {
                await ProblemAsync(context, StatusCodes.Status503ServiceUnavailable, "Token revocation status unavailable",
                    "The request cannot be authorized right now; retry shortly.", ProblemTypes.RevocationUnavailable);
                return;
            }
            if (revoked)
            {
                context.RequestServices.GetRequiredService<ClippyBot.ServiceDefaults.SecurityMetrics>().AuthenticationFailed(apiKey ? "api_key_revoked" : "token_revoked");
                context.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\", error_description=\"The token has been revoked\"";
                if (apiKey)
                {
                    // Kept in the database too, so the key stays revoked after the marker expires.
                    await context.RequestServices.GetRequiredService<ApiKeys.CreatorRevocation>().RevokeKeyAsync(context.User, context.RequestAborted);
                }
                await (apiKey
                    ? ProblemAsync(context, StatusCodes.Status401Unauthorized, "API key refused", "The API key was revoked when its creator signed out everywhere.", ProblemTypes.ApiKeyRevoked)
                    : ProblemAsync(context, StatusCodes.Status401Unauthorized, "Token revoked", "This sign-in has ended; sign in again.", ProblemTypes.TokenRevoked));
                return;
            }
            if (!apiKey)
            {
                await context.RequestServices.GetRequiredService<Audit.LoginObserver>().ObserveAsync(context);
            }
        }
        await next(context);
    }

    private static Task ProblemAsync(HttpContext context, int status, string title, string detail, string type) =>
        Results.Problem(statusCode: status, title: title, detail: detail, type: type).ExecuteAsync(context);
}
