using Microsoft.AspNetCore.Authorization;

namespace ClippyBot.Api.Workspaces;

public static class WorkspacesExtensions
{
    public static IHostApplicationBuilder AddWorkspaces(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<IAuthorizationHandler, PermissionHandler>();
        builder.Services.AddSingleton<IAuthorizationMiddlewareResultHandler, WorkspaceAuthorizationResultHandler>();
        return builder;
    }
}
