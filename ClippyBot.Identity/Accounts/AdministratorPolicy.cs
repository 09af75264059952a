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

/// <summary>Who is an administrator — one rule for the admin pages and for the role claim in access tokens.</summary>
public sealed class Administrators(UserManager<ApplicationUser> users, IConfiguration configuration)
{
    public async Task<bool> IsAdministratorAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var configured = configuration.GetSection("Identity:Administrators").GetChildren().Select(c => c.Value).OfType<string>();
        return await users.IsInRoleAsync(user, AdministratorRequirement.RoleName)
               || (user.EmailConfirmed && configured.Contains(user.Email, StringComparer.OrdinalIgnoreCase));
    }

    /// <summary>
    /// Community registry reviewers: members of the <c>plugin-reviewer</c> role, or verified addresses named in
    /// <c>Identity:PluginReviewers</c> (the same rule as administrators).
    /// </summary>
    public async Task<bool> IsPluginReviewerAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var configured = configuration.GetSection("Identity:PluginReviewers").GetChildren().Select(c => c.Value).OfType<string>();
        return await users.IsInRoleAsync(user, ClippyBot.Contracts.PlatformRoles.PluginReviewer)
               || (user.EmailConfirmed && configured.Contains(user.Email, StringComparer.OrdinalIgnoreCase));
    }
}

internal sealed class AdministratorHandler(UserManager<ApplicationUser> users, Administrators administrators)
    : AuthorizationHandler<AdministratorRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, AdministratorRequirement requirement)
    {
        // A platform administrator's session must have passed a second factor (amr mfa).
        if (context.User.Identity?.IsAuthenticated == true && context.User.HasClaim("amr", "mfa") && await users.GetUserAsync(context.User) is { } user
            && await administrators.IsAdministratorAsync(user))
        {
            context.Succeed(requirement);
        }
    }
}
