using ClippyBot.Contracts;
using System.Security.Claims;
using System.Text.RegularExpressions;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Data;
using ClippyBot.Api.Encryption;
using ClippyBot.Api.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Connections;

/// <summary>OAuth connections of a workspace (permission <see cref="Permission.PluginManagement"/>). Tokens go in, never out.</summary>
public static partial class ConnectionEndpoints
{
    public const int MaxTokenLength = 8192;

    public sealed record CreateConnectionRequest(string? Provider, string? AccessToken, string? RefreshToken, DateTimeOffset? ExpiresAt, List<string>? Scopes);

    public sealed record ConnectionResponse(Guid Id, string Provider, IReadOnlyList<string> Scopes, DateTimeOffset? ExpiresAt, bool HasRefreshToken, DateTimeOffset CreatedAt);

    public static IHostApplicationBuilder AddConnections(this IHostApplicationBuilder builder)
    {
        builder.Services.AddReencryptable<OAuthVault>();
        return builder;
    }

    public static IEndpointRouteBuilder MapConnectionsApi(this IEndpointRouteBuilder app)
    {
        var connections = app.MapGroup("/api/workspaces/{workspaceId:guid}/connections").WithTags("Connections").RequirePermission(Permission.PluginManagement);
        connections.MapPost("/", CreateAsync);
        connections.MapGet("/", ListAsync);
        connections.MapDelete("/{connectionId:guid}", DeleteAsync);
        return app;
    }

    private static async Task<Results<Created<ConnectionResponse>, ValidationProblem>> CreateAsync(
        Guid workspaceId, CreateConnectionRequest request, ClaimsPrincipal user, OAuthVault vault, AuditLog audit, TimeProvider time, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        var provider = request.Provider?.Trim().ToLowerInvariant() ?? "";
        if (!ProviderName().IsMatch(provider))
        {
            errors["provider"] = ["Use 1–64 lowercase letters, digits or '-', e.g. \"github\"."];
        }
        if (string.IsNullOrEmpty(request.AccessToken) || request.AccessToken.Length > MaxTokenLength)
        {
            errors["accessToken"] = [$"Give the access token (at most {MaxTokenLength} characters)."];
        }
        if (request.RefreshToken is { Length: 0 or > MaxTokenLength })
        {
            errors["refreshToken"] = [$"Omit it, or give at most {MaxTokenLength} characters."];
        }
        var scopes = request.Scopes ?? [];
        if (scopes.Count > 50 || scopes.Any(s => string.IsNullOrWhiteSpace(s) || s.Length > 200))
        {
            errors["scopes"] = ["At most 50 scopes of 1–200 characters."];
        }
        if (errors.Count > 0)
        {
            return TypedResults.ValidationProblem(errors);
        }
        var connection = await vault.StoreAsync(workspaceId, provider, scopes, new OAuthVault.Tokens(request.AccessToken!, request.RefreshToken, request.ExpiresAt?.ToUniversalTime()),
            user.FindFirstValue("sub") ?? user.FindFirstValue(ApiKeys.ApiKeyClaims.KeyId) ?? "?", time.GetUtcNow(), ct);
        await audit.RecordAsync(workspaceId, "connection.created", $"{connection.Id}:{provider}", ct: ct);
        return TypedResults.Created($"/api/workspaces/{workspaceId}/connections/{connection.Id}", ToResponse(connection));
    }

    private static async Task<Ok<List<ConnectionResponse>>> ListAsync(Guid workspaceId, ApiDbContext db, CancellationToken ct)
    {
        var rows = await db.OAuthConnections.AsNoTracking().Where(c => c.WorkspaceId == workspaceId).OrderBy(c => c.CreatedAt).ToListAsync(ct);
        return TypedResults.Ok(rows.Select(ToResponse).ToList());
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> DeleteAsync(Guid workspaceId, Guid connectionId, ApiDbContext db, AuditLog audit, CancellationToken ct)
    {
        var deleted = await db.OAuthConnections.Where(c => c.Id == connectionId && c.WorkspaceId == workspaceId).ExecuteDeleteAsync(ct);
        if (deleted == 0)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "Connection not found", type: ProblemTypes.ConnectionNotFound);
        }
        await audit.RecordAsync(workspaceId, "connection.deleted", connectionId.ToString(), ct: ct);
        return TypedResults.NoContent();
    }

    private static ConnectionResponse ToResponse(OAuthConnection c) => new(c.Id, c.Provider, c.Scopes, c.ExpiresAt, c.RefreshToken is not null, c.CreatedAt);

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,63}$")]
    private static partial Regex ProviderName();
}
