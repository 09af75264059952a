using System.Security.Claims;
using ClippyBot.Api.ApiKeys;
using ClippyBot.Contracts;

namespace ClippyBot.Api.Operations;

/// <summary>
/// The platform operator's console (the AppHost's dashboard commands) calls the platform-administrator endpoints as a
/// client-credentials client: its token's subject is the client itself and it carries <see cref="ApiScopes.Operations"/>,
/// which Identity grants only to clients configured for it and never offers to apps. Only the client named in
/// <c>Operations:ClientId</c> is accepted, so a configured client that somehow got the scope is still refused.
/// </summary>
public static class OperatorCaller
{
    public const string SectionName = "Operations";

    /// <summary>Who runs the console (for example the operating-system account running the AppHost): written into the audit actor.</summary>
    public const string OperatorHeader = "X-ClippyBot-Operator";

    public static bool HasOperationsScope(ClaimsPrincipal user) =>
        !user.IsApiKey()
        && user.FindFirstValue("client_id") is { Length: > 0 } client && user.FindFirstValue("sub") == client
        && user.FindAll("scope").Any(c => c.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Contains(ApiScopes.Operations, StringComparer.Ordinal));

    public static bool Is(ClaimsPrincipal user, string configuredClientId) =>
        configuredClientId.Length > 0 && HasOperationsScope(user) && user.FindFirstValue("client_id") == configuredClientId;

    /// <summary>The audit actor: the client, and the person it names (letters, digits and <c>.-_@</c> only, at most 64).</summary>
    public static string Actor(ClaimsPrincipal user, HttpContext? context)
    {
        var client = user.FindFirstValue("client_id") ?? "operator";
        var person = context?.Request.Headers[OperatorHeader].ToString() ?? "";
        return person.Length is > 0 and <= 64 && person.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '@')
            ? $"{client} for {person}"
            : client;
    }
}
