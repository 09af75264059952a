using ClippyBot.Api.Data;
using ClippyBot.Api.Workspaces;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Audit;

public static class AuditEndpoints
{
    public const int MaxPageSize = 200;

    public sealed record AuditEntryResponse(long Id, DateTimeOffset At, string ActorType, string ActorId, string Action, string Target, string Outcome, string IpAddress);
    public sealed record AuditPage(IReadOnlyList<AuditEntryResponse> Entries, long? NextBefore);
    public sealed record AuditVerification(bool Intact, long? FirstBrokenEntryId);

    public static IHostApplicationBuilder AddAudit(this IHostApplicationBuilder builder)
    {
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddScoped<AuditLog>();
        return builder;
    }

    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        var audit = app.MapGroup("/api/workspaces/{workspaceId:guid}/audit").WithTags("Audit").RequirePermission(Permission.AuditLogRead);
        audit.MapGet("/", ListAsync);
        audit.MapGet("/verify", VerifyAsync);
        return app;
    }

    /// <summary>Newest first, keyset-paged by <paramref name="before"/> (an entry id); optional exact filters.</summary>
    private static async Task<Results<Ok<AuditPage>, ValidationProblem>> ListAsync(
        Guid workspaceId, ApiDbContext db, long? before, int? pageSize, string? action, string? actorId, string? outcome)
    {
        var size = pageSize ?? 50;
        if (size is < 1 or > MaxPageSize)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["pageSize"] = [$"Use 1–{MaxPageSize}."] });
        }
        var query = db.AuditEntries.AsNoTracking().Where(e => e.ChainId == workspaceId);
        if (before is { } b)
        {
            query = query.Where(e => e.Id < b);
        }
        if (!string.IsNullOrEmpty(action))
        {
            query = query.Where(e => e.Action == action);
        }
        if (!string.IsNullOrEmpty(actorId))
        {
            query = query.Where(e => e.ActorId == actorId);
        }
        if (!string.IsNullOrEmpty(outcome))
        {
            query = query.Where(e => e.Outcome == outcome);
        }
        var entries = await query.OrderByDescending(e => e.Id).Take(size + 1)
            .Select(e => new AuditEntryResponse(e.Id, e.At, e.ActorType, e.ActorId, e.Action, e.Target, e.Outcome, e.IpAddress))
            .ToListAsync();
        var more = entries.Count > size;
        var page = entries.Take(size).ToList();
        return TypedResults.Ok(new AuditPage(page, more ? page[^1].Id : null));
    }

    private static async Task<Ok<AuditVerification>> VerifyAsync(Guid workspaceId, AuditLog log, CancellationToken ct)
    {
        var broken = await log.FindFirstBrokenLinkAsync(workspaceId, ct);
        return TypedResults.Ok(new AuditVerification(broken is null, broken));
    }
}
