using System.Security.Claims;

namespace ClippyBot.Api.Caller;

/// <summary>Who the caller is, as the Api sees it: the identity every other endpoint authorizes.</summary>
public static class CallerEndpoints
{
    public sealed record MeResponse(string Subject, string? SessionId, IReadOnlyList<string> AuthenticationMethods, IReadOnlyList<string> Scopes);

    public static IEndpointRouteBuilder MapCallerApi(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/api/me").MapGet("/", GetMe);
        return app;
    }

    private static Microsoft.AspNetCore.Http.HttpResults.Ok<MeResponse> GetMe(ClaimsPrincipal user) =>
        TypedResults.Ok(new MeResponse(
            user.FindFirstValue("sub")!,
            user.FindFirstValue("sid"),
            [.. user.FindAll("amr").Select(c => c.Value)],
            [.. (user.FindFirstValue("scope") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries)]));
}
