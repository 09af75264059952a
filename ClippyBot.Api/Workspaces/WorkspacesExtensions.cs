using ClippyBot.Email;
using Microsoft.AspNetCore.Authorization;

namespace ClippyBot.Api.Workspaces;

public static class WorkspacesExtensions
{
    public static IHostApplicationBuilder AddWorkspaces(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<IAuthorizationHandler, PermissionHandler>();
        builder.Services.AddSingleton<WorkspaceStateCache>();
        builder.Services.AddSingleton<IAuthorizationMiddlewareResultHandler, WorkspaceAuthorizationResultHandler>();
        builder.AddEmail();
        builder.Services.AddOptions<InvitationOptions>().Bind(builder.Configuration.GetSection(InvitationOptions.SectionName))
            .Validate(o => Uri.TryCreate(o.AcceptUrl, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttps || builder.Environment.IsLocal()),
                "Invitations:AcceptUrl must be the web app's https page that accepts invitations (it receives ?token=…).")
            .ValidateOnStart();
        builder.Services.AddScoped<InvitationMail>();
        return builder;
    }
}
