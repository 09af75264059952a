using ClippyBot.Contracts;
using System.Security.Claims;

namespace ClippyBot.Api.Caller;

/// <summary>
/// The caller's email address as a fact: only when the token says Identity verified it. An unverified address is only
/// what someone typed at registration — it must not match invitations, be erased or exported as theirs, or be shown
/// to a workspace as the member's address.
/// </summary>
public static class CallerEmail
{
    public static string? Verified(ClaimsPrincipal user)
    {
        ArgumentNullException.ThrowIfNull(user);
        return string.Equals(user.FindFirstValue("email_verified"), "true", StringComparison.OrdinalIgnoreCase)
            && user.FindFirstValue("email") is { Length: > 0 } email
            ? email
            : null;
    }

    public static Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult Unverified(string detail) => Microsoft.AspNetCore.Http.TypedResults.Problem(
        statusCode: Microsoft.AspNetCore.Http.StatusCodes.Status403Forbidden, title: "Email address not verified", detail: detail,
        type: ProblemTypes.EmailUnverified);
}
