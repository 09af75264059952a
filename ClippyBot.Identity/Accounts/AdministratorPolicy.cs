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
public sealed class Administrators(UserManager<ApplicationUser> users, IConfiguration configuration, TimeProvider time)
{
    public async Task<bool> IsAdministratorAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var configured = configuration.GetSection("Identity:Administrators").GetChildren().Select(c => c.Value).OfType<string>();
        return await users.IsInRoleAsync(user, AdministratorRequirement.RoleName)
               || (user.EmailConfirmed && configured.Contains(user.Email, StringComparer.OrdinalIgnoreCase));
    }

    /// <summary>The verified addresses of every administrator (members of the role, and configured addresses with a verified account).</summary>
    public async Task<IReadOnlyList<string>> AddressesAsync()
    {
        // A locked (contained) administrator's mailbox does not get the alerts about its own compromise.
        var now = time.GetUtcNow();
        var addresses = (await users.GetUsersInRoleAsync(AdministratorRequirement.RoleName))
            .Where(u => u.EmailConfirmed && !string.IsNullOrEmpty(u.Email) && !(u.LockoutEnd > now)).Select(u => u.Email!).ToList();
        foreach (var configured in configuration.GetSection("Identity:Administrators").GetChildren().Select(c => c.Value).OfType<string>())
        {
            if (await users.FindByEmailAsync(configured) is { EmailConfirmed: true, Email: { } email } user && !(user.LockoutEnd > now))
            {
                addresses.Add(email);
            }
        }
        return [.. addresses.Distinct(StringComparer.OrdinalIgnoreCase).Order(StringComparer.Ordinal)];
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

internal sealed class AdministratorHandler(UserManager<ApplicationUser> users, Administrators administrators, ClippyBot.ServiceDefaults.Detection.SecuritySignals signals)
    : AuthorizationHandler<AdministratorRequirement>
{
    protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, AdministratorRequirement requirement)
    {
        // A platform administrator's session must have passed a second factor (amr mfa).
        if (context.User.Identity?.IsAuthenticated != true || await users.GetUserAsync(context.User) is not { } user
            || !await administrators.IsAdministratorAsync(user))
        {
            return;
        }
        if (context.User.HasClaim("amr", "mfa"))
        {
            context.Succeed(requirement);
            return;
        }
        // An administrator's session without a second factor reaching for administration: a stolen password, perhaps.
        signals.Raise(ClippyBot.Contracts.SecuritySignalNames.AdministratorWithoutMfa, user.Id.ToString(), "identity administration refused: no second factor in this session");
    }
}
