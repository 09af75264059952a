using ClippyBot.Contracts;
using System.Security.Claims;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Data;
using ClippyBot.Api.Encryption;
using ClippyBot.Api.Workspaces;
using ClippyBot.ServiceDefaults;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Secrets;

/// <summary>
/// Named secrets of a workspace (permission <see cref="Permission.PluginManagement"/>). Values go in, never out: no endpoint
/// returns one; plugins granted <c>secrets:read</c> for a name receive it with each invocation.
/// </summary>
public static class SecretEndpoints
{
    public const int MaxValueLength = 16 * 1024;

    public sealed record SetSecretRequest(string? Value);

    public sealed record SecretResponse(string Name, DateTimeOffset UpdatedAt, string UpdatedBy);

    public static IHostApplicationBuilder AddSecrets(this IHostApplicationBuilder builder)
    {
        builder.Services.AddReencryptable<SecretVault>();
        return builder;
    }

    public static IEndpointRouteBuilder MapSecretsApi(this IEndpointRouteBuilder app)
    {
        var secrets = app.MapGroup("/api/workspaces/{workspaceId:guid}/secrets").WithTags("Secrets").RequirePermission(Permission.PluginManagement);
        secrets.MapPut("/{name}", SetAsync);
        secrets.MapGet("/", ListAsync);
        secrets.MapDelete("/{name}", DeleteAsync);
        return app;
    }

    private static async Task<Results<Created<SecretResponse>, Ok<SecretResponse>, ValidationProblem>> SetAsync(
        Guid workspaceId, string name, SetSecretRequest request, ClaimsPrincipal user, SecretVault vault, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (!WorkspaceSecretNames.IsValid(name))
        {
            errors["name"] = [$"Use {WorkspaceSecretNames.Rule}."];
        }
        if (string.IsNullOrEmpty(request.Value) || request.Value.Length > MaxValueLength)
        {
            errors["value"] = [$"Give the secret's value (1–{MaxValueLength} characters)."];
        }
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }
        var by = user.FindFirstValue("sub") ?? user.FindFirstValue(ApiKeys.ApiKeyClaims.KeyId) ?? "?";
        var (secret, created) = await vault.SetAsync(workspaceId, name, request.Value!, by, time.GetUtcNow(), ct);
        await audit.RecordAsync(workspaceId, created ? "secret.created" : "secret.replaced", name, ct: ct);
        return created
            ? TypedResults.Created($"/api/workspaces/{workspaceId}/secrets/{name}", ToResponse(secret))
            : TypedResults.Ok(ToResponse(secret));
    }

    private static async Task<Ok<List<SecretResponse>>> ListAsync(Guid workspaceId, ApiDbContext db, CancellationToken ct)
    {
        var rows = await db.WorkspaceSecrets.AsNoTracking().Where(s => s.WorkspaceId == workspaceId).OrderBy(s => s.Name).ToListAsync(ct);
        return TypedResults.Ok(rows.Select(ToResponse).ToList());
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(Guid workspaceId, string name, ApiDbContext db, AuditLog audit, CancellationToken ct)
    {
        if (await db.WorkspaceSecrets.Where(s => s.WorkspaceId == workspaceId && s.Name == name).ExecuteDeleteAsync(ct) == 0)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Secret not found", type: ProblemTypes.SecretNotFound,
                detail: "The workspace has no secret of that name.");
        }
        await audit.RecordAsync(workspaceId, "secret.deleted", name, ct: ct);
        return TypedResults.NoContent();
    }

    private static SecretResponse ToResponse(WorkspaceSecret s) => new(s.Name, s.UpdatedAt, s.UpdatedBy);
}
