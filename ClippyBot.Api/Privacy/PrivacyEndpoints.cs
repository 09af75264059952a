using ClippyBot.Contracts;
using System.Security.Claims;
using ClippyBot.Api.Data;
using ClippyBot.Api.RateLimiting;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Privacy;

/// <summary>
/// A person's rights over their data (seed §8, GDPR/CCPA; docs/privacy.md): a copy of everything held about them across
/// the services, produced in the background and offered through a time-limited link; and erasure of their account.
/// For people only — an API key acts for a workspace, not a person (the fallback policy refuses it).
/// </summary>
public static class PrivacyEndpoints
{
    public sealed record ExportResponse(Guid Id, string Status, DateTimeOffset RequestedAt, DateTimeOffset? CompletedAt,
        DateTimeOffset? ExpiresAt, string? Error);

    public sealed record EraseAccountRequest(string? ConfirmEmail);

    public sealed record ErasureResponse(string Status);

    public static IHostApplicationBuilder AddPrivacy(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<PrivacyOptions>().Bind(builder.Configuration.GetSection(PrivacyOptions.SectionName))
            .Validate(o => Uri.TryCreate(o.PublicBaseUrl, UriKind.Absolute, out var u) && u.Scheme == Uri.UriSchemeHttps,
                "Privacy:PublicBaseUrl must be the Api's public https address (the emailed download links point there).")
            .Validate(o => o.ExportLifetime > TimeSpan.Zero && o.ExportLifetime <= TimeSpan.FromDays(7),
                "Privacy:ExportLifetime must be positive and at most 7 days.")
            .Validate(o => o.WorkerInterval > TimeSpan.Zero && o.ClaimTimeout > TimeSpan.Zero && o.MaxExportAttempts > 0,
                "Privacy:WorkerInterval, ClaimTimeout and MaxExportAttempts must be positive.")
            .ValidateOnStart();
        builder.Services.AddScoped<SubjectKeys>();
        builder.Services.AddScoped<AccountEraser>();
        builder.Services.AddScoped<PersonalDataExporter>();
        builder.Services.AddScoped<DataExportJobs>();
        builder.Services.AddScoped<ExportMail>();
        builder.Services.AddSingleton<PrivacySignal>();
        builder.Services.AddHostedService<PrivacyWorker>();
        // Not ready until erasures are re-applied: after a restore, an erased person must not be served meanwhile.
        builder.Services.AddSingleton<ErasuresReapplied>();
        builder.Services.AddHealthChecks().AddCheck<ErasuresReappliedHealthCheck>("erasures-reapplied");
        return builder;
    }

    public static IEndpointRouteBuilder MapPrivacyApi(this IEndpointRouteBuilder app)
    {
        var me = app.MapGroup("/api/me").WithTags("Privacy");
        me.MapDelete("/", EraseAsync).RequireRateLimiting(RateLimitingExtensions.SensitivePolicy).ProducesProblem(StatusCodes.Status409Conflict);
        me.MapPost("/exports", RequestExportAsync).RequireRateLimiting(RateLimitingExtensions.SensitivePolicy).ProducesProblem(StatusCodes.Status409Conflict);
        me.MapGet("/exports", ListExportsAsync);
        me.MapGet("/exports/{exportId:guid}", GetExportAsync);
        me.MapGet("/exports/{exportId:guid}/download", DownloadMineAsync).Produces(StatusCodes.Status200OK, contentType: "application/json").ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status410Gone);
        // The emailed link: the random token in it is the credential, so a browser opens it without a bearer token.
        app.MapGet("/api/exports/{exportId:guid}/download", DownloadByLinkAsync).WithTags("Privacy").AllowAnonymous()
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status410Gone);
        return app;
    }

    /// <summary>How recent the sign-in behind a token must be for irreversible actions.</summary>
    public static readonly TimeSpan RecentAuthentication = TimeSpan.FromMinutes(5);

    private static async Task<Results<NoContent, Accepted<ErasureResponse>, ProblemHttpResult, ValidationProblem>> EraseAsync(
        [FromBody] EraseAccountRequest request, ClaimsPrincipal user, AccountEraser eraser, TimeProvider time, CancellationToken ct)
    {
        // Irreversible: the person must have proven a credential within the last few minutes (step-up), not merely hold
        // a token from a login days old that a silent refresh kept alive.
        if (!long.TryParse(user.FindFirstValue("auth_time"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var authTime)
            || time.GetUtcNow() - DateTimeOffset.FromUnixTimeSeconds(authTime) > RecentAuthentication)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status403Forbidden, title: "Sign in again",
                detail: $"Erasing an account needs a sign-in at most {RecentAuthentication.TotalMinutes:0} minutes old; sign in again (prompt=login or max_age) and retry.",
                type: ProblemTypes.ReauthenticationRequired);
        }
        var subject = user.FindFirstValue("sub")!;
        var email = user.FindFirstValue("email");
        if (email is null)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Sign in with the email scope",
                detail: "Erasing an account is confirmed by typing its email address; this access token does not carry it.",
                type: ProblemTypes.Validation);
        }
        // Irreversible: the person types their address, as on the confirmation screen.
        if (!string.Equals(request.ConfirmEmail?.Trim(), email, StringComparison.OrdinalIgnoreCase))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]>
            {
                [nameof(EraseAccountRequest.ConfirmEmail)] = ["Type your account's email address to confirm that it is erased."],
            });
        }
        // Only a verified address is theirs: invitations to an address they merely typed are not erased as theirs.
        var (refused, owned, completed) = await eraser.EraseAsync(subject, ClippyBot.Api.Caller.CallerEmail.Verified(user), ct);
        if (refused)
        {
            var problem = new ProblemDetails
            {
                Status = StatusCodes.Status409Conflict,
                Title = "You are the only owner of workspaces",
                Detail = "Make another member an owner of each of these workspaces, or delete them, then erase your account.",
                Type = ProblemTypes.SoleOwner,
            };
            problem.Extensions["workspaces"] = owned;
            return TypedResults.Problem(problem);
        }
        return completed ? TypedResults.NoContent() : TypedResults.Accepted((string?)null, new ErasureResponse("identity-pending"));
    }

    private static async Task<Results<AcceptedAtRoute<ExportResponse>, Accepted<ExportResponse>, ProblemHttpResult>> RequestExportAsync(
        ClaimsPrincipal user, DataExportJobs jobs, CancellationToken ct)
    {
        if (await jobs.RequestAsync(user.FindFirstValue("sub")!, ct) is not { } export)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "An export is already being made",
                detail: "Wait for the export in progress (GET /api/me/exports) before asking for another.",
                type: ProblemTypes.ExportInProgress);
        }
        return TypedResults.Accepted($"/api/me/exports/{export.Id}", ToResponse(export));
    }

    private static async Task<Ok<List<ExportResponse>>> ListExportsAsync(ClaimsPrincipal user, ApiDbContext db, CancellationToken ct)
    {
        var subject = user.FindFirstValue("sub")!;
        var exports = await db.DataExports.AsNoTracking().Where(e => e.SubjectId == subject).OrderByDescending(e => e.RequestedAt).Take(50).ToListAsync(ct);
        return TypedResults.Ok(exports.Select(ToResponse).ToList());
    }

    private static async Task<Results<Ok<ExportResponse>, ProblemHttpResult>> GetExportAsync(Guid exportId, ClaimsPrincipal user, ApiDbContext db, CancellationToken ct) =>
        await FindMineAsync(db, exportId, user, ct) is { } export ? TypedResults.Ok(ToResponse(export)) : ExportNotFound();

    private static async Task<Results<FileContentHttpResult, ProblemHttpResult>> DownloadMineAsync(
        Guid exportId, ClaimsPrincipal user, ApiDbContext db, DataExportJobs jobs, HttpContext http, CancellationToken ct) =>
        await FindMineAsync(db, exportId, user, ct) is { } export ? await DownloadAsync(export, jobs, http, ct) : ExportNotFound();

    private static async Task<Results<FileContentHttpResult, ProblemHttpResult>> DownloadByLinkAsync(
        Guid exportId, [FromQuery] string? token, DataExportJobs jobs, HttpContext http, CancellationToken ct)
    {
        // A wrong token and an unknown export look the same.
        var export = string.IsNullOrEmpty(token) || token.Length > 100 ? null : await jobs.FindByLinkAsync(exportId, token, ct);
        return export is null ? ExportNotFound() : await DownloadAsync(export, jobs, http, ct);
    }

    private static async Task<Results<FileContentHttpResult, ProblemHttpResult>> DownloadAsync(DataExport export, DataExportJobs jobs, HttpContext http, CancellationToken ct)
    {
        http.Response.Headers.CacheControl = "no-store";
        http.Response.Headers["Referrer-Policy"] = "no-referrer";
        if (export.Status is DataExportStatus.Pending or DataExportStatus.Running)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "The export is not ready yet",
                detail: "It is being made; a mail with the download link follows when it is ready.", type: ProblemTypes.ExportNotReady);
        }
        if (await jobs.OpenAsync(export, ct) is not { } document)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status410Gone, title: "The export is no longer available",
                detail: "Its download period has ended (or it failed) and its data was deleted. Ask for a new export.",
                type: ProblemTypes.ExportExpired);
        }
        return TypedResults.File(document, "application/json", $"clippybot-personal-data-{export.CompletedAt:yyyy-MM-dd}.json");
    }

    private static Task<DataExport?> FindMineAsync(ApiDbContext db, Guid exportId, ClaimsPrincipal user, CancellationToken ct)
    {
        var subject = user.FindFirstValue("sub")!;
        return db.DataExports.AsNoTracking().SingleOrDefaultAsync(e => e.Id == exportId && e.SubjectId == subject, ct);
    }

    private static ExportResponse ToResponse(DataExport e) => new(e.Id, e.Status, e.RequestedAt, e.CompletedAt, e.ExpiresAt, e.Error);

    private static ProblemHttpResult ExportNotFound() => TypedResults.Problem(statusCode: StatusCodes.Status404NotFound,
        title: "Export not found", detail: "No export of yours has this id, or the link is not valid.", type: ProblemTypes.ExportNotFound);
}
