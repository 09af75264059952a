using System.Security.Claims;
using System.Text.Json;
using ClippyBot.Contracts;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Registry.Data;
using ClippyBot.Registry.Metadata;
using ClippyBot.Registry.Publishers;
using ClippyBot.Registry.Versions;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Registry.Reviews;

/// <summary>
/// Human review (platform role <c>plugin-reviewer</c> with a second factor): the queue with each version's checks, risk
/// summary and changes; approve or reject with a mandatory note. A version asking for <c>secrets:read</c>,
/// <c>oauth:use</c> or a new <c>http:fetch</c> host needs two different reviewers (four eyes); nobody reviews a version
/// of their own. Reviewers and platform administrators withdraw (yank) an approved version with a reason.
/// </summary>
public static class ReviewEndpoints
{
    public const string ReviewerPolicy = "registry-reviewer";
    public const string YankPolicy = "registry-yank";

    public sealed record DecisionRequest(string? Decision, string? Note);
    public sealed record YankRequest(string? Reason);
    public sealed record QueueEntry(Guid Id, string PluginId, string Version, string Publisher, DateTimeOffset SubmittedAt, bool NeedsTwoReviewers,
        IReadOnlyList<string> ApprovedBy, IReadOnlyList<CheckResult> Checks);
    public sealed record DecisionResponse(Guid Id, string Status, int Approvals, int ApprovalsNeeded);

    public static IEndpointRouteBuilder MapReviewEndpoints(this IEndpointRouteBuilder app)
    {
        var reviews = app.MapGroup("/api/reviews").RequireAuthorization(ReviewerPolicy).WithTags("Reviews");
        reviews.MapGet("/", QueueAsync);
        reviews.MapPost("/{versionId:guid}/decisions", DecideAsync);
        app.MapPost("/api/versions/{versionId:guid}/yank", YankAsync).RequireAuthorization(YankPolicy).WithTags("Reviews");
        return app;
    }

    /// <summary>Four eyes: sensitive permissions, or a host the last approved version did not fetch from.</summary>
    public static bool NeedsTwoReviewers(IReadOnlyList<CheckResult> checks) =>
        checks.Any(c => c.Check == "risk" && (c.Detail.Contains(PluginPermissions.SecretsRead, StringComparison.Ordinal) || c.Detail.Contains(PluginPermissions.OAuthUse, StringComparison.Ordinal)))
        || checks.Any(c => c.Check == "changes" && (c.Detail.Contains("host ", StringComparison.Ordinal) || c.Detail == "the first version of this plugin" && checks.Any(r => r.Check == "risk" && r.Detail.Contains(PluginPermissions.HttpFetch, StringComparison.Ordinal))));

    private static List<CheckResult> Checks(string json) => JsonSerializer.Deserialize<List<CheckResult>>(json, PluginManifest.Json) ?? [];

    private static string Subject(ClaimsPrincipal user) => RegistryAudit.Subject(user);

    private static Task AuditAsync(RegistryDbContext db, TimeProvider time, ClaimsPrincipal user, string action, bool allowed, string detail, CancellationToken ct) =>
        RegistryAudit.RecordAsync(db, time, user, action, allowed, detail, ct);

    internal static async Task<Ok<List<QueueEntry>>> QueueAsync(RegistryDbContext db, CancellationToken ct)
    {
        var waiting = await (from v in db.Versions.AsNoTracking()
                             where v.Status == VersionStatus.InReview
                             join p in db.Publishers.AsNoTracking() on v.PublisherId equals p.Id
                             orderby v.SubmittedAt
                             select new { v.Id, v.PluginId, v.Version, Publisher = p.Name, v.SubmittedAt, v.ChecksJson }).Take(200).ToListAsync(ct);
        var ids = waiting.Select(w => w.Id).ToList();
        var approvals = await db.ReviewDecisions.AsNoTracking().Where(d => ids.Contains(d.VersionId) && d.Approved).ToListAsync(ct);
        return TypedResults.Ok(waiting.Select(w =>
        {
            var checks = Checks(w.ChecksJson);
            return new QueueEntry(w.Id, w.PluginId, w.Version, w.Publisher, w.SubmittedAt, NeedsTwoReviewers(checks),
                [.. approvals.Where(a => a.VersionId == w.Id).Select(a => a.Reviewer)], checks);
        }).ToList());
    }

    internal static async Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> DecideAsync(
        Guid versionId, DecisionRequest request, ClaimsPrincipal user, RegistryDbContext db, MetadataPublisher metadata, TimeProvider time, CancellationToken ct)
    {
        var reviewer = Subject(user);
        var note = request.Note?.Trim() ?? "";
        if (request.Decision is not ("approve" or "reject") || note.Length is 0 or > 2000)
        {
            await AuditAsync(db, time, user, "review.decide", false, $"{versionId}: invalid decision or note", ct);
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                ["decision"] = ["\"approve\" or \"reject\"."],
                ["note"] = ["A note for the publisher (1–2,000 characters) is required either way."],
            });
        }
        var version = await db.Versions.SingleOrDefaultAsync(v => v.Id == versionId, ct);
        if (version is null || version.Status != VersionStatus.InReview)
        {
            await AuditAsync(db, time, user, "review.decide", false, $"{versionId}: not waiting for review", ct);
            return TypedResults.Problem("No version with this id is waiting for review.", statusCode: StatusCodes.Status404NotFound, title: "Not in review", type: ProblemTypes.NotFound);
        }
        var publisher = await db.Publishers.AsNoTracking().SingleAsync(p => p.Id == version.PublisherId, ct);
        if (publisher.SubjectId == reviewer)
        {
            await AuditAsync(db, time, user, "review.decide", false, $"{version.PluginId} {version.Version}: own version", ct);
            return TypedResults.Problem("Nobody reviews a version they published.", statusCode: StatusCodes.Status403Forbidden, title: "Own version", type: ProblemTypes.PermissionDenied);
        }
        if (await db.ReviewDecisions.AnyAsync(d => d.VersionId == versionId && d.Reviewer == reviewer, ct))
        {
            await AuditAsync(db, time, user, "review.decide", false, $"{version.PluginId} {version.Version}: decided before", ct);
            return TypedResults.Problem("You decided on this version already; another reviewer gives the second approval.", statusCode: StatusCodes.Status409Conflict,
                title: "Decided before", type: ProblemTypes.PermissionDenied);
        }
        var now = time.GetUtcNow();
        db.ReviewDecisions.Add(new ReviewDecision { Id = Guid.CreateVersion7(), VersionId = versionId, Reviewer = reviewer, Approved = request.Decision == "approve", Note = note, At = now });
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            db.ChangeTracker.Clear();
            await AuditAsync(db, time, user, "review.decide", false, $"{versionId}: concurrent decision", ct);
            return TypedResults.Problem("Another decision was recorded at the same moment; look again.", statusCode: StatusCodes.Status409Conflict, title: "Concurrent decision", type: ProblemTypes.PermissionDenied);
        }
        // Counted after this decision is stored, and the status changed only from InReview: of two reviewers approving at
        // the same moment, the later count sees both, and exactly one update wins.
        var needed = NeedsTwoReviewers(Checks(version.ChecksJson)) ? 2 : 1;
        var approvals = await db.ReviewDecisions.CountAsync(d => d.VersionId == versionId && d.Approved, ct);
        var decided = request.Decision == "reject" ? VersionStatus.Rejected : approvals >= needed ? VersionStatus.Approved : VersionStatus.InReview;
        if (decided != VersionStatus.InReview
            && await db.Versions.Where(v => v.Id == versionId && v.Status == VersionStatus.InReview)
                .ExecuteUpdateAsync(u => u.SetProperty(v => v.Status, decided).SetProperty(v => v.DecisionNote, note).SetProperty(v => v.DecidedAt, now), ct) == 1
            && decided == VersionStatus.Approved)
        {
            await metadata.PublishAsync(ct);
        }
        version.Status = await db.Versions.AsNoTracking().Where(v => v.Id == versionId).Select(v => v.Status).SingleAsync(ct);
        await AuditAsync(db, time, user, "review.decide", true, $"{version.PluginId} {version.Version}: {request.Decision} ({approvals}/{needed}) — {note}", ct);
        return TypedResults.Ok(new DecisionResponse(versionId, version.Status.ToString(), approvals, needed));
    }

    private static async Task<Results<Ok<DecisionResponse>, ValidationProblem, ProblemHttpResult>> YankAsync(
        Guid versionId, YankRequest request, ClaimsPrincipal user, RegistryDbContext db, MetadataPublisher metadata, TimeProvider time, CancellationToken ct)
    {
        var reason = request.Reason?.Trim() ?? "";
        if (reason.Length is 0 or > 500)
        {
            await AuditAsync(db, time, user, "version.yank", false, $"{versionId}: no reason", ct);
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["reason"] = ["Why it is withdrawn (1–500 characters): workspaces will see it."] });
        }
        var now = time.GetUtcNow();
        var yanked = await db.Versions.Where(v => v.Id == versionId && v.Status == VersionStatus.Approved)
            .ExecuteUpdateAsync(s => s.SetProperty(v => v.Status, VersionStatus.Yanked).SetProperty(v => v.YankReason, reason).SetProperty(v => v.YankedAt, now), ct);
        if (yanked == 0)
        {
            await AuditAsync(db, time, user, "version.yank", false, $"{versionId}: not approved", ct);
            return TypedResults.Problem("No approved version with this id.", statusCode: StatusCodes.Status404NotFound, title: "Not approved", type: ProblemTypes.NotFound);
        }
        // It leaves targets now: every PluginHost quarantines it at its next refresh.
        await metadata.PublishAsync(ct);
        await AuditAsync(db, time, user, "version.yank", true, $"{versionId}: {reason}", ct);
        return TypedResults.Ok(new DecisionResponse(versionId, nameof(VersionStatus.Yanked), 0, 0));
    }
}
