using ClippyBot.Contracts;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;

namespace ClippyBot.Identity.Containment;

/// <summary>
/// Containment for other services (the Api's platform-administrator endpoints): lock, unlock and end every session of
/// accounts. Callers are services, not people: an access token from the client-credentials grant with scope
/// <see cref="OidcResources.ContainmentScope"/>, validated by this server itself. The person who asked is named by the
/// caller in <c>X-ClippyBot-Actor</c> and written to the log; the caller keeps the audit record.
/// </summary>
public static partial class ContainmentEndpoints
{
    public const string PolicyName = "containment-service";
    public const int MaxUsersPerRequest = 1000;

    public static IHostApplicationBuilder AddContainment(this IHostApplicationBuilder builder)
    {
        builder.Services.AddScoped<AccountContainment>();
        builder.Services.AddAuthorizationBuilder().AddPolicy(PolicyName, policy => policy
            .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(context => context.User.HasScope(OidcResources.ContainmentScope)));
        return builder;
    }

    public static WebApplication MapContainmentApi(this WebApplication app)
    {
        var group = app.MapGroup("/internal/containment").RequireAuthorization(PolicyName).ExcludeFromDescription();
        group.MapPost("/users/{userId:guid}/lock", LockAsync);
        group.MapPost("/users/{userId:guid}/unlock", UnlockAsync);
        group.MapPost("/users/revoke-sessions", RevokeSessionsAsync);
        group.MapPost("/signing-keys/rotate", RotateSigningKeysAsync);
        // Where the Api's security alerts are mailed.
        group.MapGet("/administrators", async (Administrators administrators) => TypedResults.Ok(await administrators.AddressesAsync()));
        return app;
    }

    public sealed record RevokeSessionsRequest(IReadOnlyList<Guid>? UserIds);

    /// <summary>How many accounts had their sessions ended, and which ids name no account.</summary>
    public sealed record RevokeSessionsResult(int Revoked, IReadOnlyList<Guid> Unknown);

    private static async Task<Results<NoContent, ProblemHttpResult>> LockAsync(Guid userId, [AsParameters] ContainmentServices services, CancellationToken ct)
    {
        if (await services.Users.FindByIdAsync(userId.ToString()) is not { } user)
        {
            return UnknownUser(userId);
        }
        await services.Containment.LockAsync(user, ct);
        LogLocked(services.Logger, services.Actor, user.Id);
        return TypedResults.NoContent();
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> UnlockAsync(Guid userId, [AsParameters] ContainmentServices services)
    {
        if (await services.Users.FindByIdAsync(userId.ToString()) is not { } user)
        {
            return UnknownUser(userId);
        }
        await services.Containment.UnlockAsync(user);
        LogUnlocked(services.Logger, services.Actor, user.Id);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<RevokeSessionsResult>, ProblemHttpResult>> RevokeSessionsAsync(
        [FromBody] RevokeSessionsRequest request, [AsParameters] ContainmentServices services, CancellationToken ct)
    {
        var ids = request.UserIds?.Distinct().ToList() ?? [];
        if (ids.Count is 0 or > MaxUsersPerRequest)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Invalid user list",
                detail: $"Send between 1 and {MaxUsersPerRequest} user ids in userIds.", type: ProblemTypes.Validation);
        }
        var unknown = new List<Guid>();
        var revoked = 0;
        foreach (var id in ids)
        {
            if (await services.Users.FindByIdAsync(id.ToString()) is not { } user)
            {
                unknown.Add(id);
                continue;
            }
            await services.Containment.RevokeSessionsAsync(user, ct);
            revoked++;
        }
        LogRevoked(services.Logger, services.Actor, revoked);
        return TypedResults.Ok(new RevokeSessionsResult(revoked, unknown));
    }

    /// <summary>The key that signs from now on.</summary>
    public sealed record SigningKeyRotation(string KeyId);

    private static async Task<Ok<SigningKeyRotation>> RotateSigningKeysAsync(SigningKeyRing keys, SigningKeyChanges changes, [AsParameters] ContainmentServices services, CancellationToken ct)
    {
        var keyId = await keys.RotateNowAsync(ct);
        LogSigningKeysRotated(services.Logger, services.Actor, keyId);
        await changes.AnnounceAsync();
        return TypedResults.Ok(new SigningKeyRotation(keyId));
    }

    private static ProblemHttpResult UnknownUser(Guid userId) => TypedResults.Problem(statusCode: StatusCodes.Status404NotFound,
        title: "Unknown account", detail: $"No account has id {userId}.", type: ProblemTypes.UnknownAccount);

    [LoggerMessage(LogLevel.Warning, "Containment: account {UserId} locked and its sessions revoked, asked by {Actor}")]
    private static partial void LogLocked(ILogger logger, string actor, Guid userId);

    [LoggerMessage(LogLevel.Warning, "Containment: account {UserId} unlocked, asked by {Actor}")]
    private static partial void LogUnlocked(ILogger logger, string actor, Guid userId);

    [LoggerMessage(LogLevel.Warning, "Containment: signing keys rotated, {KeyId} signs from now on, asked by {Actor}")]
    private static partial void LogSigningKeysRotated(ILogger logger, string actor, string keyId);

    [LoggerMessage(LogLevel.Warning, "Containment: sessions of {Count} accounts revoked, asked by {Actor}")]
    private static partial void LogRevoked(ILogger logger, string actor, int count);
}

public sealed class ContainmentServices(UserManager<ApplicationUser> users, AccountContainment containment, ILogger<AccountContainment> logger, HttpContext context)
{
    public UserManager<ApplicationUser> Users { get; } = users;

    public AccountContainment Containment { get; } = containment;

    public ILogger<AccountContainment> Logger { get; } = logger;

    public HttpContext Context { get; } = context;

    /// <summary>Calling client and, when given, the person it acts for — for the log only, never for decisions.</summary>
    public string Actor
    {
        get
        {
            var client = Context.User.GetClaim(OpenIddictConstants.Claims.ClientId) ?? "?";
            var person = Context.Request.Headers["X-ClippyBot-Actor"].ToString();
            return person.Length is > 0 and <= 64 && person.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') ? $"{client} for {person}" : client;
        }
    }
}
