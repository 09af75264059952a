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
    /// <param name="Reason">Why the chain does not hold at <paramref name="FirstBrokenEntryId"/>.</param>
    /// <param name="AnchorsChecked">How many of Identity's anchors were compared (null: Identity could not be asked, so a
    /// truncated or wholly rewritten chain could not be ruled out).</param>
    public sealed record AuditVerification(bool Intact, long? FirstBrokenEntryId, string? Reason, int? AnchorsChecked);

    /// <summary>Paging and exact-match filters of an audit read (query string).</summary>
    public sealed record AuditQuery(long? Before, int? PageSize, string? Action, string? ActorId, string? Outcome);

    public static IHostApplicationBuilder AddAudit(this IHostApplicationBuilder builder)
    {
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddScoped<AuditLog>();
        builder.Services.AddSingleton(sp => AuditChainKey.FromConfiguration(sp.GetRequiredService<IConfiguration>()));
        builder.Services.AddHostedService<AuditAnchoring>();
        builder.Services.AddExceptionHandler<AdministrationRefusals>();
        return builder;
    }

    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder app)
    {
        var audit = app.MapGroup("/api/workspaces/{workspaceId:guid}/audit").WithTags("Audit").RequirePermission(Permission.AuditLogRead);
        audit.MapGet("/", ListAsync);
        audit.MapGet("/verify", VerifyAsync);
        return app;
    }

    private static Task<Results<Ok<AuditPage>, ValidationProblem>> ListAsync(Guid workspaceId, ApiDbContext db, AuditLog log, [AsParameters] AuditQuery query, CancellationToken ct) =>
        ReadChainAsync(db, log, workspaceId, query, ct);

    private static Task<Ok<AuditVerification>> VerifyAsync(Guid workspaceId, AuditLog log, Containment.IdentityServiceClient identity, CancellationToken ct) =>
        VerifyChainAsync(log, identity, workspaceId, ct);

    /// <summary>One chain (a workspace, or the platform's), newest first, keyset-paged by <c>before</c> (an entry id); optional exact filters.</summary>
    internal static async Task<Results<Ok<AuditPage>, ValidationProblem>> ReadChainAsync(ApiDbContext db, AuditLog log, Guid chainId, AuditQuery filter, CancellationToken ct)
    {
        var (before, pageSize, action, actorId, outcome) = filter;
        var size = pageSize ?? 50;
        if (size is < 1 or > MaxPageSize)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["pageSize"] = [$"Use 1–{MaxPageSize}."] });
        }
        var query = db.AuditEntries.AsNoTracking().Where(e => e.ChainId == chainId);
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
        var entries = await query.OrderByDescending(e => e.Id).Take(size + 1).ToListAsync(ct);
        var more = entries.Count > size;
        var page = new List<AuditEntryResponse>(Math.Min(size, entries.Count));
        foreach (var e in entries.Take(size))
        {
            page.Add(new AuditEntryResponse(e.Id, e.At, e.ActorType, e.ActorId, e.Action, e.Target, e.Outcome, await log.ReadIpAddressAsync(e, ct)));
        }
        return TypedResults.Ok(new AuditPage(page, more ? page[^1].Id : null));
    }

    internal static async Task<Ok<AuditVerification>> VerifyChainAsync(AuditLog log, Containment.IdentityServiceClient identity, Guid chainId, CancellationToken ct)
    {
        IReadOnlyList<AuditAnchor>? anchors;
        try
        {
            anchors = await identity.AnchorsAsync(chainId, ct);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Identity unreachable (or answering nonsense): the links can still be checked, but not the anchors.
            anchors = null;
        }
        var broken = await log.FindFirstBreakAsync(chainId, anchors ?? [], ct);
        // Without the anchors a truncated or wholly rewritten chain cannot be ruled out: never reported intact.
        return TypedResults.Ok(broken is null && anchors is null
            ? new AuditVerification(false, null, "the links hold, but Identity could not be asked for the anchors; verify again", null)
            : new AuditVerification(broken is null, broken?.EntryId, broken?.Reason, anchors?.Count));
    }
}
