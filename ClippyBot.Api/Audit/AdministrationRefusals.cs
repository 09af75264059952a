using Microsoft.AspNetCore.Diagnostics;

namespace ClippyBot.Api.Audit;

/// <summary>
/// A platform administrator's request that cannot be read (truncated or wrong-typed JSON, a parameter that does not bind)
/// is refused with 400 before any handler runs, so no handler can record it: this records it in the platform chain and
/// leaves the answer to the usual problem details. Workspace endpoints are unchanged: their refusals are the tenant's.
/// </summary>
internal sealed class AdministrationRefusals : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        // The middleware has cleared the request's endpoint by now; its feature keeps the one that failed, and the path.
        var failed = httpContext.Features.Get<IExceptionHandlerFeature>();
        if (exception is BadHttpRequestException bad && httpContext.User.Identity?.IsAuthenticated == true
            && Workspaces.WorkspaceAuthorizationResultHandler.GuardedPolicy(failed?.Endpoint) is { } policy)
        {
            await httpContext.RequestServices.GetRequiredService<AuditLog>().RecordAsync(null, "request.refused",
                $"{httpContext.Request.Method} {failed?.Path} ({policy}): {bad.StatusCode}", "refused", CancellationToken.None);
        }
        return false;
    }
}
