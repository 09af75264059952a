using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Identity;

namespace ClippyBot.Identity.Accounts;

/// <summary>
/// Identity administrators: members of the <see cref="RoleName"/> role, or accounts named in configuration
/// (<c>Identity:Administrators</c>, by email) whose address is verified — an unverified address proves nothing, so
/// registering someone else's address never makes anyone an administrator.
/// </summary>
public sealed class AdministratorRequirement : IAuthorizationRequirement
{
    public const string PolicyName = "identity-admin";
    public const string RoleName = "identity-admin";
}

internal sealed class AdministratorHandler(UserManager<ApplicationUser> users, IConfiguration configuration)
    : AuthorizationHandler<AdministratorRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, AdministratorRequirement requirement)
    {
        if (context.User.Identity?.IsAuthenticated != true || await users.GetUserAsync(context.User) is not { } user)
        {
            return;
        }
        var configured = configuration.GetSection("Identity:Administrators").GetChildren().Select(c => c.Value).OfType<string>();
        if (await users.IsInRoleAsync(user, AdministratorRequirement.RoleName)
            || (user.EmailConfirmed && configured.Contains(user.Email, StringComparer.OrdinalIgnoreCase)))
        {
            context.Succeed(requirement);
        }
    }
}
