using ClippyBot.Registry.Data;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;

namespace ClippyBot.Registry.Publishers;

/// <summary>Refusals by policy (no token, no second factor, an unverified address) are recorded like every other refusal.</summary>
public sealed class RefusalAudit(RegistryDbContext db, TimeProvider time) : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(authorizeResult);
        if (authorizeResult.Challenged || authorizeResult.Forbidden)
        {
            var path = context.Request.Path.Value ?? "";
            await RegistryAudit.RecordAsync(db, time, context.User, "authorization", false,
                $"{context.Request.Method} {(path.Length > 200 ? path[..200] : path)}: {(authorizeResult.Challenged ? "no valid token" : "forbidden (a verified address and a second factor are required)")}",
                context.RequestAborted);
        }
        await _default.HandleAsync(next, context, policy, authorizeResult);
    }
}
