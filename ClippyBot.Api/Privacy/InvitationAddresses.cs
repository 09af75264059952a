using ClippyBot.Api.Workspaces;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Privacy;

/// <summary>Invitations addressed to one email address, matched as invitations are accepted (case-insensitive).</summary>
public static class InvitationAddresses
{
    public static IQueryable<Invitation> AddressedTo(this IQueryable<Invitation> invitations, string email)
    {
        ArgumentNullException.ThrowIfNull(email);
        // ILIKE with every wildcard escaped: an exact, case-insensitive comparison ('_' is common in addresses).
        var pattern = email.Replace(@"\", @"\\", StringComparison.Ordinal).Replace("%", @"\%", StringComparison.Ordinal).Replace("_", @"\_", StringComparison.Ordinal);
        return invitations.Where(i => EF.Functions.ILike(i.Email, pattern, @"\"));
    }
}
