using ClippyBot.Contracts;
using System.Security.Claims;
using ClippyBot.Api.Data;
using ClippyBot.Api.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.ApiKeys;

public static class ApiKeyEndpoints
{
    public const int MaxNameLength = 100;

    public sealed record CreateApiKeyRequest(string? Name, List<Permission>? Scopes, DateTimeOffset? ExpiresAt);
    public sealed record ApiKeyResponse(Guid Id, string Name, IReadOnlyList<Permission> Scopes, DateTimeOffset CreatedAt,
        DateTimeOffset? ExpiresAt, DateTimeOffset? RevokedAt, DateTimeOffset? LastUsedAt, string? LastUsedIp, string CreatedBy);
    public sealed record CreatedApiKeyResponse(ApiKeyResponse ApiKey, string Key);

    public static IEndpointRouteBuilder MapApiKeysApi(this IEndpointRouteBuilder app)
    {
        var keys = app.MapGroup("/api/workspaces/{workspaceId:guid}/api-keys").WithTags("API keys").RequirePermission(Permission.ApiKeyManagement);
        keys.MapPost("/", CreateAsync).RequireRateLimiting(RateLimiting.RateLimitingExtensions.SensitivePolicy);
        keys.MapGet("/", ListAsync);
        keys.MapDelete("/{keyId:guid}", RevokeAsync);
        return app;
    }

    private static async Task<Results<Created<CreatedApiKeyResponse>, ValidationProblem, ProblemHttpResult>> CreateAsync(
        Guid workspaceId, CreateApiKeyRequest request, ClaimsPrincipal user, HttpContext http, [AsParameters] ApiKeyServices services)
    {
        if (user.IsApiKey())
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Users only",
                detail: "API keys are created by people, not by other API keys.", type: ProblemTypes.UsersOnly);
        }
        var now = services.Time.GetUtcNow();
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Trim().Length > MaxNameLength)
        {
            errors["name"] = [$"Give the key a name of 1–{MaxNameLength} characters."];
        }
        var scopes = request.Scopes?.Distinct().ToList() ?? [];
        if (scopes.Count == 0 || scopes.Any(s => !Enum.IsDefined(s)))
        {
            errors["scopes"] = ["Choose at least one permission for the key."];
        }
        if (request.ExpiresAt is { } expires && expires <= now)
        {
            errors["expiresAt"] = ["The expiry must be in the future."];
        }
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }
        // A key never carries more than its creator may do.
        var role = (WorkspaceRole)http.Items[typeof(WorkspaceRole)]!;
        var beyond = scopes.Where(s => !RolePermissions.Grants(role, s)).ToList();
        if (beyond.Count > 0)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["scopes"] = [$"Your role cannot grant: {string.Join(", ", beyond)}."],
            });
        }

        var (publicId, key) = ApiKeySecrets.NewKey();
        var apiKey = new ApiKey
        {
            Id = Guid.CreateVersion7(),
            WorkspaceId = workspaceId,
            PublicId = publicId,
            Name = request.Name!.Trim(),
            SecretHash = services.Secrets.Hash(key),
            Scopes = scopes,
            CreatedBy = user.FindFirstValue("sub")!,
            CreatedAt = now,
            // Any valid offset is accepted and stored as UTC (timestamptz holds UTC only).
            ExpiresAt = request.ExpiresAt?.ToUniversalTime(),
        };
        services.Db.ApiKeys.Add(apiKey);
        await services.Db.SaveChangesAsync();
        await services.Audit.RecordAsync(workspaceId, "api_key.created", $"{apiKey.Id}:{apiKey.Name}:{string.Join(',', scopes)}");
        return TypedResults.Created($"/api/workspaces/{workspaceId}/api-keys/{apiKey.Id}", new CreatedApiKeyResponse(ToResponse(apiKey), key));
    }

    private static async Task<Ok<List<ApiKeyResponse>>> ListAsync(Guid workspaceId, [AsParameters] ApiKeyServices services)
    {
        var keys = await services.Db.ApiKeys.AsNoTracking().Where(k => k.WorkspaceId == workspaceId).OrderBy(k => k.CreatedAt).ToListAsync();
        return TypedResults.Ok(keys.Select(ToResponse).ToList());
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> RevokeAsync(Guid workspaceId, Guid keyId, [AsParameters] ApiKeyServices services)
    {
        // Revocation takes effect on the next request: every request looks the key up.
        var revoked = await services.Db.ApiKeys.Where(k => k.Id == keyId && k.WorkspaceId == workspaceId && k.RevokedAt == null)
            .ExecuteUpdateAsync(s => s.SetProperty(k => k.RevokedAt, services.Time.GetUtcNow()));
        if (revoked == 1)
        {
            await services.Audit.RecordAsync(workspaceId, "api_key.revoked", keyId.ToString());
        }
        return revoked == 1
            ? TypedResults.NoContent()
            : TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "API key not found", type: ProblemTypes.ApiKeyNotFound);
    }

    private static ApiKeyResponse ToResponse(ApiKey k) => new(k.Id, k.Name, k.Scopes, k.CreatedAt, k.ExpiresAt, k.RevokedAt, k.LastUsedAt, k.LastUsedIp, k.CreatedBy);
}

public sealed class ApiKeyServices(ApiDbContext db, ApiKeySecrets secrets, TimeProvider time, Audit.AuditLog audit)
{
    public Audit.AuditLog Audit { get; } = audit;

    public ApiDbContext Db { get; } = db;

    public ApiKeySecrets Secrets { get; } = secrets;

    public TimeProvider Time { get; } = time;
}

public static class ApiKeysExtensions
{
    public static IHostApplicationBuilder AddApiKeys(this IHostApplicationBuilder builder)
    {
        var secret = builder.Configuration["ApiKeys:HashKey"] ?? "";
        if (secret.Length < 43)
        {
            throw new InvalidOperationException("ApiKeys:HashKey must be a random secret of at least 43 characters (the AppHost generates one).");
        }
        builder.Services.AddSingleton(ApiKeySecrets.FromConfiguredSecret(secret));
        builder.Services.AddAuthentication().AddScheme<Microsoft.AspNetCore.Authentication.AuthenticationSchemeOptions, ApiKeyAuthenticationHandler>(ApiKeyClaims.Scheme, null);
        builder.Services.AddSingleton<CreatorRevocation>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CreatorRevocation>());
        return builder;
    }
}
