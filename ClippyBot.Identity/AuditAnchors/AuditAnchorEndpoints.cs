using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using OpenIddict.Abstractions;
using OpenIddict.Validation.AspNetCore;

namespace ClippyBot.Identity.AuditAnchors;

/// <summary>A head of one of the Api's audit chains, recorded when the Api anchored it. Append-only.</summary>
public sealed class AuditAnchor
{
    public long Id { get; set; }

    public Guid ChainId { get; set; }

    public long EntryId { get; set; }

    public required byte[] Hash { get; set; }

    public DateTimeOffset At { get; set; }
}

/// <summary>
/// Keeps the Api's audit chain heads where the Api's database role cannot write (Identity's own database), so a chain
/// truncated or rewritten in the Api's database is found by verification. Callers are services holding a
/// client-credentials token with scope <see cref="OidcResources.AuditScope"/>. There is no way to change or remove an
/// anchor through this API.
/// </summary>
public static class AuditAnchorEndpoints
{
    public const string PolicyName = "audit-anchor-service";
    public const int HashBytes = 32;

    public sealed record AnchorRequest(Guid ChainId, long EntryId, byte[]? Hash);

    public sealed record AnchorResponse(long EntryId, byte[] Hash, DateTimeOffset At);

    public static IHostApplicationBuilder AddAuditAnchors(this IHostApplicationBuilder builder)
    {
        builder.Services.AddAuthorizationBuilder().AddPolicy(PolicyName, policy => policy
            .AddAuthenticationSchemes(OpenIddictValidationAspNetCoreDefaults.AuthenticationScheme)
            .RequireAuthenticatedUser()
            .RequireAssertion(context => context.User.HasScope(OidcResources.AuditScope)));
        return builder;
    }

    public static WebApplication MapAuditAnchorApi(this WebApplication app)
    {
        var group = app.MapGroup("/internal/audit-anchors").RequireAuthorization(PolicyName).ExcludeFromDescription();
        group.MapPost("/", AnchorAsync);
        group.MapGet("/{chainId:guid}", ListAsync);
        return app;
    }

    private static async Task<Results<NoContent, ValidationProblem>> AnchorAsync(AnchorRequest request, IdentityDataContext db, TimeProvider time, CancellationToken ct)
    {
        if (request.Hash is not { Length: HashBytes } || request.EntryId <= 0)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["hash"] = [$"Send the entry id (positive) and its {HashBytes}-byte hash."] });
        }
        // The same head anchored twice (replicas, retries) is kept once.
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO "AuditAnchors" ("ChainId", "EntryId", "Hash", "At")
            SELECT {request.ChainId}, {request.EntryId}, {request.Hash}, {time.GetUtcNow()}
            WHERE NOT EXISTS (SELECT 1 FROM "AuditAnchors" WHERE "ChainId" = {request.ChainId} AND "EntryId" = {request.EntryId} AND "Hash" = {request.Hash})
            """, ct);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<List<AnchorResponse>>> ListAsync(Guid chainId, IdentityDataContext db, CancellationToken ct) =>
        TypedResults.Ok(await db.AuditAnchors.AsNoTracking().Where(a => a.ChainId == chainId).OrderBy(a => a.EntryId)
            .Select(a => new AnchorResponse(a.EntryId, a.Hash, a.At)).ToListAsync(ct));
}
