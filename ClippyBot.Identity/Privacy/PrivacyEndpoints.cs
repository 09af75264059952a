using ClippyBot.Contracts;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Http.HttpResults;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;

namespace ClippyBot.Identity.Privacy;

/// <summary>
/// Data-subject requests for other services (the Api runs exports and erasures end to end): export one account's personal
/// data, erase one account. Callers are services holding a client-credentials token with scope
/// <see cref="OidcResources.PrivacyScope"/> — a scope of its own, so a containment credential cannot read personal data.
/// </summary>
public static partial class PrivacyEndpoints
{
    public const string PolicyName = "privacy-service";

    public static IHostApplicationBuilder AddPrivacy(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<PersonalData>();
        builder.Services.AddAuthorizationBuilder().AddPolicy(PolicyName, policy => policy
            .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(context => context.User.HasScope(OidcResources.PrivacyScope)));
        return builder;
    }

    public static WebApplication MapPrivacyApi(this WebApplication app)
    {
        var group = app.MapGroup("/internal/privacy/users/{userId:guid}").RequireAuthorization(PolicyName).ExcludeFromDescription();
        group.MapGet("/", ExportAsync);
        group.MapDelete("/", EraseAsync);
        return app;
    }

    private static async Task<Results<Ok<PersonalData.IdentityExport>, ProblemHttpResult>> ExportAsync(
        Guid userId, PersonalData data, HttpContext context, ILogger<PersonalData> logger, CancellationToken ct)
    {
        if (await data.ExportAsync(userId, ct) is not { } export)
        {
            return UnknownAccount(userId);
        }
        LogExported(logger, Caller(context), userId);
        return TypedResults.Ok(export);
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> EraseAsync(
        Guid userId, PersonalData data, HttpContext context, ILogger<PersonalData> logger, CancellationToken ct)
    {
        if (!await data.EraseAsync(userId, ct))
        {
            return UnknownAccount(userId);
        }
        LogErased(logger, Caller(context), userId);
        return TypedResults.NoContent();
    }

    private static string Caller(HttpContext context) => context.User.GetClaim(OpenIddictConstants.Claims.ClientId) ?? "?";

    private static ProblemHttpResult UnknownAccount(Guid userId) => TypedResults.Problem(statusCode: StatusCodes.Status404NotFound,
        title: "Unknown account", detail: $"No account has id {userId}.", type: ProblemTypes.UnknownAccount);

    [LoggerMessage(LogLevel.Information, "Privacy: personal data of account {UserId} exported for {Caller}")]
    private static partial void LogExported(ILogger logger, string caller, Guid userId);

    [LoggerMessage(LogLevel.Warning, "Privacy: account {UserId} erased for {Caller}")]
    private static partial void LogErased(ILogger logger, string caller, Guid userId);
}
