using ClippyBot.Contracts;
using System.Security.Claims;
using ClippyBot.Api.ApiKeys;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Data;
using ClippyBot.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Containment;

/// <summary>
/// Seed §6 containment for platform administrators (role <see cref="PlatformRoles.Administrator"/> in their access token):
/// lock an account, end every session of one account or of every member of a workspace, disable any API key. Account
/// actions are carried out by Identity (which owns accounts and sessions, and publishes the revocation markers every
/// resource server checks on the next request); key actions here. Each action, including failed ones, is written to the
/// platform audit chain, and workspace actions to the workspace's chain as well.
/// </summary>
public static class ContainmentEndpoints
{
    public const string PolicyName = "platform-admin";

    public sealed record RevokedSessionsResponse(int Revoked, IReadOnlyList<Guid> UnknownUsers);

    public static IHostApplicationBuilder AddContainment(this IHostApplicationBuilder builder)
    {
        builder.Services.Configure<ServiceClients.ServiceClientOptions>(builder.Configuration.GetSection(ServiceClients.ServiceClientOptions.SectionName));
        builder.Services.AddSingleton<ServiceClients.ServiceTokens>();
        builder.Services.AddExceptionHandler<ServiceClients.DependencyUnavailableProblems>();
        builder.Services.AddHttpClient<IdentityServiceClient>(IdentityServiceClient.HttpClientName);
        // A person with the role who signed in with a second factor, or the operator's console (Operations:ClientId).
        var operatorClient = builder.Configuration[$"{Operations.OperatorCaller.SectionName}:ClientId"] ?? "";
        builder.Services.AddAuthorizationBuilder().AddPolicy(PolicyName, policy => policy
            .RequireAuthenticatedUser()
            .RequireAssertion(c => (!c.User.IsApiKey() && c.User.HasClaim("role", PlatformRoles.Administrator) && c.User.HasClaim("amr", "mfa"))
                                   || Operations.OperatorCaller.Is(c.User, operatorClient)));
        return builder;
    }

    public static IEndpointRouteBuilder MapContainmentApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/api/admin").WithTags("Containment").RequireAuthorization(PolicyName)
            .RequireRateLimiting(RateLimiting.RateLimitingExtensions.SensitivePolicy);
        // 502: Identity answered, but did not carry out the action.
        admin.MapPost("/users/{userId:guid}/lock", LockAsync).ProducesProblem(StatusCodes.Status502BadGateway);
        admin.MapPost("/users/{userId:guid}/unlock", UnlockAsync).ProducesProblem(StatusCodes.Status502BadGateway);
        admin.MapPost("/users/{userId:guid}/revoke-sessions", RevokeUserSessionsAsync).ProducesProblem(StatusCodes.Status502BadGateway);
        admin.MapPost("/workspaces/{workspaceId:guid}/revoke-sessions", RevokeWorkspaceSessionsAsync);
        admin.MapPost("/api-keys/{keyId:guid}/disable", DisableApiKeyAsync);
        admin.MapGet("/audit", (ApiDbContext db, AuditLog log, [AsParameters] AuditEndpoints.AuditQuery query, CancellationToken ct) =>
            AuditEndpoints.ReadChainAsync(db, log, Guid.Empty, query, ct));
        admin.MapGet("/audit/verify", (AuditLog log, IdentityServiceClient identity, CancellationToken ct) => AuditEndpoints.VerifyChainAsync(log, identity, Guid.Empty, ct));
        return app;
    }

    internal static Task<Results<NoContent, ProblemHttpResult>> LockAsync(Guid userId, [AsParameters] ContainmentServices services, CancellationToken ct) =>
        AccountActionAsync(userId, "account.locked", services, (identity, actor) => identity.LockAsync(userId, actor, ct), ct, endsSessions: true);

    private static Task<Results<NoContent, ProblemHttpResult>> UnlockAsync(Guid userId, [AsParameters] ContainmentServices services, CancellationToken ct) =>
        AccountActionAsync(userId, "account.unlocked", services, (identity, actor) => identity.UnlockAsync(userId, actor, ct), ct);

    internal static async Task<Results<NoContent, ProblemHttpResult>> RevokeUserSessionsAsync(Guid userId, [AsParameters] ContainmentServices services, CancellationToken ct) =>
        await AccountActionAsync(userId, "account.sessions_revoked", services,
            async (identity, actor) => (await identity.RevokeSessionsAsync([userId], actor, ct)).Revoked == 1, ct, endsSessions: true);

    private static async Task<Results<NoContent, ProblemHttpResult>> AccountActionAsync(Guid userId, string action, ContainmentServices services,
        Func<IdentityServiceClient, string, Task<bool>> act, CancellationToken ct, bool endsSessions = false)
    {
        try
        {
            if (!await act(services.Identity, services.Actor))
            {
                await services.Audit.RecordAsync(null, action, userId.ToString(), "not_found", ct);
                return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Unknown account",
                    detail: $"Identity has no account with id {userId}.", type: ProblemTypes.UnknownAccount);
            }
        }
        catch (ServiceClients.ServiceUnavailableException e)
        {
            await services.Audit.RecordAsync(null, action, userId.ToString(), "failed", ct);
            return IdentityUnavailable(e);
        }
        if (endsSessions)
        {
            await services.ApplyMarkersHereAsync([userId]);
        }
        await services.Audit.RecordAsync(null, action, userId.ToString(), ct: ct);
        return TypedResults.NoContent();
    }

    private static async Task<Results<Ok<RevokedSessionsResponse>, ProblemHttpResult>> RevokeWorkspaceSessionsAsync(
        Guid workspaceId, [AsParameters] ContainmentServices services, CancellationToken ct)
    {
        if (!await services.Db.Workspaces.AnyAsync(w => w.Id == workspaceId, ct))
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Workspace not found", type: ProblemTypes.WorkspaceNotFound);
        }
        var members = await services.Db.Memberships.Where(m => m.WorkspaceId == workspaceId).Select(m => m.UserId).ToListAsync(ct);
        var userIds = members.Select(id => Guid.TryParse(id, out var g) ? g : (Guid?)null).OfType<Guid>().ToList();
        IdentityServiceClient.RevokeSessionsResult result;
        try
        {
            result = await services.Identity.RevokeSessionsAsync(userIds, services.Actor, ct);
            await services.ApplyMarkersHereAsync(userIds);
        }
        catch (ServiceClients.ServiceUnavailableException e)
        {
            await services.Audit.RecordAsync(workspaceId, "workspace.sessions_revoked", workspaceId.ToString(), "failed", ct);
            await services.Audit.RecordAsync(null, "workspace.sessions_revoked", workspaceId.ToString(), "failed", ct);
            return IdentityUnavailable(e);
        }
        await services.Audit.RecordAsync(workspaceId, "workspace.sessions_revoked", workspaceId.ToString(), ct: ct);
        await services.Audit.RecordAsync(null, "workspace.sessions_revoked", workspaceId.ToString(), ct: ct);
        return TypedResults.Ok(new RevokedSessionsResponse(result.Revoked, result.Unknown));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult>> DisableApiKeyAsync(Guid keyId, [AsParameters] ContainmentServices services, CancellationToken ct)
    {
        var key = await services.Db.ApiKeys.AsNoTracking().Where(k => k.Id == keyId).Select(k => new { k.WorkspaceId, k.RevokedAt }).SingleOrDefaultAsync(ct);
        if (key is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "API key not found", type: ProblemTypes.ApiKeyNotFound);
        }
        // Every request looks its key up, so the next one with this key is refused. Disabling twice is not an error.
        await services.Db.ApiKeys.Where(k => k.Id == keyId && k.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, services.Time.GetUtcNow()), ct);
        await services.Audit.RecordAsync(key.WorkspaceId, "api_key.disabled_by_platform", keyId.ToString(), ct: ct);
        await services.Audit.RecordAsync(null, "api_key.disabled_by_platform", keyId.ToString(), ct: ct);
        return TypedResults.NoContent();
    }

    internal static ProblemHttpResult IdentityUnavailable(ServiceClients.ServiceUnavailableException e) => TypedResults.Problem(
        statusCode: StatusCodes.Status502BadGateway, title: "Identity did not carry out the action",
        detail: e.Message + " Nothing was changed by this request; retry it.", type: ProblemTypes.IdentityUnavailable);
}

public sealed class ContainmentServices(ApiDbContext db, AuditLog audit, IdentityServiceClient identity, TimeProvider time, HttpContext context,
    Authentication.RevocationMarkers markers)
{
    public Authentication.RevocationMarkers Markers { get; } = markers;

    /// <summary>
    /// Identity has written and announced its markers; this replica reads and applies them before answering, so the
    /// administrator's next request already meets a dead token (other replicas hear the announcement in milliseconds).
    /// Identity's own values are used, never new ones: a later value could refuse a token issued right after the event.
    /// </summary>
    public async Task ApplyMarkersHereAsync(IReadOnlyList<Guid> userIds)
    {
        try
        {
            await Markers.ApplyFromRedisAsync([.. userIds.Select(id => id.ToString())]);
        }
        catch (Exception e) when (e is StackExchange.Redis.RedisException or TimeoutException)
        {
            // Identity's announcement still reaches this replica; nothing more to do.
        }
    }

    public ApiDbContext Db { get; } = db;

    public AuditLog Audit { get; } = audit;

    public IdentityServiceClient Identity { get; } = identity;

    public TimeProvider Time { get; } = time;

    public HttpContext Context { get; } = context;

    /// <summary>The administrator's subject, passed to Identity for its log.</summary>
    public string Actor => Context.User.FindFirstValue("sub") ?? "unknown";
}
