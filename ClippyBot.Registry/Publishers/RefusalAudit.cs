using ClippyBot.Registry.Data;
using ClippyBot.ServiceDefaults.Edge;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using StackExchange.Redis;

namespace ClippyBot.Registry.Publishers;

/// <summary>
/// Refusals by policy (no token, no second factor, an unverified address, no reviewer role) are recorded like every other
/// refusal — with two bounds, since the chain is append-only and every append takes its lock: a page visit without a
/// session is a sign-in redirect, not a refusal; and anonymous refusals on the API are recorded once per address and
/// minute (the rest are counted in the security metrics), so a flood of junk tokens cannot grow the chain without bound.
/// </summary>
public sealed class RefusalAudit(RegistryDbContext db, TimeProvider time, IConnectionMultiplexer redis, ClippyBot.ServiceDefaults.SecurityMetrics metrics)
    : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(authorizeResult);
        if ((authorizeResult.Challenged || authorizeResult.Forbidden) && await RecordsAsync(context))
        {
            var path = context.Request.Path.Value ?? "";
            await RegistryAudit.RecordAsync(db, time, context.User, "authorization", false,
                $"{context.Request.Method} {(path.Length > 200 ? path[..200] : path)}: {(authorizeResult.Challenged ? "no valid token or session" : "forbidden (a verified address and a second factor are required, and for reviews the reviewer role)")}",
                context.RequestAborted);
        }
        await _default.HandleAsync(next, context, policy, authorizeResult);
    }

    private async Task<bool> RecordsAsync(HttpContext context)
    {
        if (context.User.Identity?.IsAuthenticated == true)
        {
            return true;
        }
        if (!context.Request.Path.StartsWithSegments("/api"))
        {
            return false;
        }
        metrics.AuthenticationFailed("registry_anonymous_refused");
        var window = time.GetUtcNow().ToUnixTimeSeconds() / 60;
        try
        {
            return await redis.GetDatabase().StringSetAsync($"clippybot:registry:refusal-recorded:{ClientAddressKey.Of(context.Connection.RemoteIpAddress)}:{window}", 1,
                TimeSpan.FromMinutes(2), When.NotExists);
        }
        catch (RedisException)
        {
            // Without the cache, record (the rate limit still bounds how many).
            return true;
        }
    }
}
