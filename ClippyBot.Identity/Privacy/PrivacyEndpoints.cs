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
        // Where to tell people their data was affected by an incident (the Api's breach notifications).
        app.MapPost("/internal/privacy/contacts", ContactsAsync).RequireAuthorization(PolicyName).ExcludeFromDescription();
        return app;
    }

    public const int MaxContactsPerRequest = 1000;

    public sealed record ContactsRequest(IReadOnlyList<Guid>? UserIds);

    /// <summary>A person's verified address; accounts without one (or erased) are left out.</summary>
    public sealed record Contact(Guid UserId, string Email);

    private static async Task<Results<Ok<List<Contact>>, ProblemHttpResult>> ContactsAsync(ContactsRequest request, Data.IdentityDataContext db,
        HttpContext context, ILogger<PersonalData> logger, CancellationToken ct)
    {
        var ids = request.UserIds?.Distinct().ToList() ?? [];
        if (ids.Count is 0 or > MaxContactsPerRequest)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid user list",
                detail: $"Send between 1 and {MaxContactsPerRequest} user ids in userIds.", type: ProblemTypes.Validation);
        }
        var contacts = await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.ToListAsync(
            db.Users.Where(u => ids.Contains(u.Id) && u.EmailConfirmed && u.Email != null).Select(u => new Contact(u.Id, u.Email!)), ct);
        LogContactsRead(logger, Caller(context), contacts.Count);
        return TypedResults.Ok(contacts);
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

    [LoggerMessage(LogLevel.Information, "Privacy: {Count} verified addresses read by {Caller} (breach notification)")]
    private static partial void LogContactsRead(ILogger logger, string caller, int count);

    [LoggerMessage(LogLevel.Information, "Privacy: personal data of account {UserId} exported for {Caller}")]
    private static partial void LogExported(ILogger logger, string caller, Guid userId);

    [LoggerMessage(LogLevel.Warning, "Privacy: account {UserId} erased for {Caller}")]
    private static partial void LogErased(ILogger logger, string caller, Guid userId);
}
