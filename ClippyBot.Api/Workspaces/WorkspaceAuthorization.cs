using ClippyBot.Contracts;
using System.Security.Claims;
using ClippyBot.Api.ApiKeys;
using ClippyBot.Api.Data;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Workspaces;

/// <summary>Endpoint metadata: the permission a workspace endpoint needs (checked before the body is even read).</summary>
public sealed class PermissionRequirement(Permission? permission) : IAuthorizationRequirement
{
    /// <summary>Null: membership alone is enough (e.g. leaving).</summary>
    public Permission? Permission { get; } = permission;
}

/// <summary>Why a workspace request was refused; decides between 404 (not a member) and 403 problem types.</summary>
public enum WorkspaceDenial
{
    NotMember,
    MissingPermission,
    MfaRequired,
}

public sealed class WorkspaceAuthorizationFailure(WorkspaceDenial denial, Permission? permission) : AuthorizationFailureReason(WorkspaceHandlerMarker.Instance, denial.ToString())
{
    public WorkspaceDenial Denial { get; } = denial;

    public Permission? Permission { get; } = permission;
}

internal sealed class WorkspaceHandlerMarker : IAuthorizationHandler
{
    public static readonly WorkspaceHandlerMarker Instance = new();

    public Task HandleAsync(AuthorizationHandlerContext context) => Task.CompletedTask;
}

/// <summary>Loads the caller's membership of the route's workspace and applies the matrix and the MFA policy.</summary>
internal sealed class PermissionHandler(ApiDbContext db, WorkspaceStateCache cache) : AuthorizationHandler<PermissionRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, PermissionRequirement requirement)
    {
        if (context.Resource is not HttpContext http || !Guid.TryParse(http.GetRouteValue("workspaceId")?.ToString(), out var workspaceId))
        {
            context.Fail(new WorkspaceAuthorizationFailure(WorkspaceDenial.NotMember, requirement.Permission));
            return;
        }
        if (context.User.IsApiKey())
        {
            await AuthorizeApiKeyAsync(context, requirement, workspaceId, http);
            return;
        }
        if (context.User.FindFirstValue("sub") is not { } userId)
        {
            context.Fail(new WorkspaceAuthorizationFailure(WorkspaceDenial.NotMember, requirement.Permission));
            return;
        }
        var membership = await MembershipAsync(workspaceId, userId, http);
        if (membership is null)
        {
            context.Fail(new WorkspaceAuthorizationFailure(WorkspaceDenial.NotMember, requirement.Permission));
        }
        else if (requirement.Permission is { } needed && !RolePermissions.Grants(membership.Role, needed))
        {
            context.Fail(new WorkspaceAuthorizationFailure(WorkspaceDenial.MissingPermission, requirement.Permission));
        }
        else if (membership.RequireMfaForAdmins && membership.Role is WorkspaceRole.Owner or WorkspaceRole.Admin
                 && !context.User.FindAll("amr").Any(c => c.Value is "mfa" or "otp"))
        {
            context.Fail(new WorkspaceAuthorizationFailure(WorkspaceDenial.MfaRequired, requirement.Permission));
        }
        else
        {
            http.Items[typeof(WorkspaceRole)] = membership.Role;
            context.Succeed(requirement);
        }
    }

    private sealed record MembershipView(WorkspaceRole Role, bool RequireMfaForAdmins);

    /// <summary>The membership of <paramref name="userId"/>, from the per-replica cache that membership changes invalidate.</summary>
    private Task<MembershipView?> MembershipAsync(Guid workspaceId, string userId, HttpContext http) =>
        cache.GetOrLoadAsync(workspaceId, "member:" + userId, ct => db.Memberships.AsNoTracking()
            .Where(m => m.WorkspaceId == workspaceId && m.UserId == userId)
            .Select(m => new MembershipView(m.Role, m.Workspace.RequireMfaForAdmins))
            .SingleOrDefaultAsync(ct), http.RequestAborted);

    /// <summary>Permissions that change who may do what (roles, members, keys): a person's decision, never a key's.</summary>
    private static readonly HashSet<Permission> PersonOnly = [Permission.MemberManagement, Permission.ApiKeyManagement, Permission.WorkspaceDelete];

    /// <summary>
    /// A key acts only in its own workspace (elsewhere: 404, like any outsider), only within its scopes, never with a
    /// person-only permission, and never beyond its creator's current role — re-evaluated on each request from the
    /// membership cache, so demoting, removing or erasing the creator narrows or disables their keys at once.
    /// </summary>
    private async Task AuthorizeApiKeyAsync(AuthorizationHandlerContext context, PermissionRequirement requirement, Guid workspaceId, HttpContext http)
    {
        if (context.User.FindFirstValue(ApiKeyClaims.WorkspaceId) != workspaceId.ToString())
        {
            context.Fail(new WorkspaceAuthorizationFailure(WorkspaceDenial.NotMember, requirement.Permission));
            return;
        }
        if (requirement.Permission is not { } needed || !context.User.HasClaim(ApiKeyClaims.Scope, needed.ToString()) || PersonOnly.Contains(needed))
        {
            context.Fail(new WorkspaceAuthorizationFailure(WorkspaceDenial.MissingPermission, requirement.Permission));
            return;
        }
        var creator = context.User.FindFirstValue(ApiKeyClaims.CreatedBy) is { } createdBy ? await MembershipAsync(workspaceId, createdBy, http) : null;
        if (creator is null || !RolePermissions.Grants(creator.Role, needed))
        {
            context.Fail(new WorkspaceAuthorizationFailure(WorkspaceDenial.MissingPermission, requirement.Permission));
            return;
        }
        context.Succeed(requirement);
    }
}

/// <summary>
/// Turns workspace authorization failures into problem details: a non-member gets 404 exactly like a workspace that does
/// not exist, so ids reveal nothing; a member without the permission gets 403; MFA policy gets its own problem type.
/// </summary>
internal sealed class WorkspaceAuthorizationResultHandler : IAuthorizationMiddlewareResultHandler
{
    private readonly AuthorizationMiddlewareResultHandler _default = new();

    /// <summary>The platform policy guarding the endpoint (platform administration, or the metrics scrape), if any.</summary>
    internal static string? GuardedPolicy(Endpoint? endpoint) =>
        endpoint?.Metadata.GetOrderedMetadata<Microsoft.AspNetCore.Authorization.IAuthorizeData>()
            .Select(a => a.Policy).FirstOrDefault(p => p is Containment.ContainmentEndpoints.PolicyName or Detection.DetectionEndpoints.MetricsPolicy);

    public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
    {
        var failure = authorizeResult.AuthorizationFailure?.FailureReasons.OfType<WorkspaceAuthorizationFailure>().FirstOrDefault();
        if (!authorizeResult.Forbidden || failure is null)
        {
            // Only a refusal pays for the metadata scan: every request that is let through passes here too.
            var guarded = authorizeResult.Forbidden ? GuardedPolicy(context.GetEndpoint()) : null;
            if (guarded is not null)
            {
                // Someone signed in reaching for platform administration (a person without the role or second factor, a
                // client without the operations scope): a platform security event. Rate-limited per caller before this.
                await context.RequestServices.GetRequiredService<Audit.AuditLog>().RecordAsync(null, "authorization.denied",
                    $"{context.Request.Method} {context.Request.Path} needs {guarded}", "denied", CancellationToken.None);
                if (guarded == Containment.ContainmentEndpoints.PolicyName)
                {
                    context.RequestServices.GetRequiredService<ClippyBot.ServiceDefaults.Detection.SecuritySignals>().Raise(SecuritySignalNames.AdministrationRefused,
                        context.User.FindFirstValue(ApiKeyClaims.KeyId) ?? context.User.FindFirstValue("sub") ?? "unknown",
                        $"{context.Request.Method} {context.Request.Path} refused (amr: {string.Join(' ', context.User.FindAll("amr").Select(c => c.Value))})");
                }
            }
            await _default.HandleAsync(next, context, policy, authorizeResult);
            return;
        }
        context.RequestServices.GetRequiredService<ClippyBot.ServiceDefaults.SecurityMetrics>().AuthorizationDenied(failure.Denial.ToString());
        if (failure.Denial != WorkspaceDenial.NotMember && Guid.TryParse(context.GetRouteValue("workspaceId")?.ToString(), out var workspaceId))
        {
            // A member refused is a security event of that workspace (outsiders get 404 and leave no trace in its log).
            await context.RequestServices.GetRequiredService<Audit.AuditLog>().RecordAsync(workspaceId, "authorization.denied",
                $"{context.Request.Method} {context.Request.Path} needs {failure.Permission?.ToString() ?? "membership"}", "denied", context.RequestAborted);
        }
        var result = failure.Denial switch
        {
            WorkspaceDenial.NotMember => Results.Problem(statusCode: StatusCodes.Status404NotFound, title: "Workspace not found",
                type: ProblemTypes.WorkspaceNotFound),
            WorkspaceDenial.MfaRequired => Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Two-factor sign-in required",
                detail: "This workspace requires owners and admins to sign in with a second factor.", type: ProblemTypes.MfaRequired),
            _ => Results.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Permission denied",
                detail: $"Your role in this workspace does not include '{failure.Permission}'.", type: ProblemTypes.PermissionDenied),
        };
        await result.ExecuteAsync(context);
    }
}

public static class PermissionEndpointExtensions
{
    /// <summary>Declares the workspace permission an endpoint needs; the route must carry <c>{workspaceId}</c>.</summary>
    public static TBuilder RequirePermission<TBuilder>(this TBuilder builder, Permission permission) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(policy => policy.RequireAuthenticatedUser().AddRequirements(new PermissionRequirement(permission)))
            .WithMetadata(new RequiredPermissionMetadata(permission));

    /// <summary>Any member of the route's workspace, whatever the role.</summary>
    public static TBuilder RequireMembership<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.RequireAuthorization(policy => policy.RequireAuthenticatedUser().AddRequirements(new PermissionRequirement(null)))
            .WithMetadata(new RequiredPermissionMetadata(null));
}

/// <summary>Lets tests and docs enumerate which endpoint needs which permission (null: membership only).</summary>
public sealed record RequiredPermissionMetadata(Permission? Permission);
