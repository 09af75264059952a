using System.Security.Claims;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.Accounts;

/// <summary>
/// The sign-in cookie's principal: id, name, email and security stamp — read from the user row already loaded. ClippyBot
/// keeps no per-user or per-role claims in Identity's tables and decides administrator access from the database on every
/// request (<see cref="AdministratorHandler"/>), so the stock factory's role and claim queries (two round trips on every
/// login and, with the stamp checked on each request, on every signed-in page) bought nothing.
/// </summary>
public sealed class AccountClaimsFactory(UserManager<ApplicationUser> users, IOptions<IdentityOptions> options)
    : UserClaimsPrincipalFactory<ApplicationUser>(users, options)
{
    protected override Task<ClaimsIdentity> GenerateClaimsAsync(ApplicationUser user)
    {
        ArgumentNullException.ThrowIfNull(user);
        var names = Options.ClaimsIdentity;
        var identity = new ClaimsIdentity(IdentityConstants.ApplicationScheme, names.UserNameClaimType, names.RoleClaimType);
        identity.AddClaim(new Claim(names.UserIdClaimType, user.Id.ToString()));
        identity.AddClaim(new Claim(names.UserNameClaimType, user.UserName ?? ""));
        if (user.Email is { } email)
        {
            identity.AddClaim(new Claim(names.EmailClaimType, email));
        }
        identity.AddClaim(new Claim(names.SecurityStampClaimType, user.SecurityStamp ?? ""));
        return Task.FromResult(identity);
    }
}
