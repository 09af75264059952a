using System.Text.RegularExpressions;
using ClippyBot.Registry.Data;
using ClippyBot.Registry.Versions;
using ClippyBot.Tuf;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Registry.Metadata;

/// <summary>
/// The repository as TUF clients read it (consistent snapshots): <c>/tuf/N.root.json</c>, <c>/tuf/timestamp.json</c>,
/// <c>/tuf/N.snapshot.json</c>, <c>/tuf/N.targets.json</c>, and approved bundles at <c>/tuf/targets/ID/SHA256.VERSION.bundle</c>.
/// Anonymous and read-only: what it serves is signed, and the clients check everything.
/// </summary>
public static partial class MetadataEndpoints
{
    public static IEndpointRouteBuilder MapMetadataEndpoints(this IEndpointRouteBuilder app)
    {
        var tuf = app.MapGroup("/tuf").AllowAnonymous();
        tuf.MapGet("/changes", WaitForChangeAsync);
        tuf.MapGet("/{file}", GetMetadataAsync);
        tuf.MapGet("/targets/{pluginId}/{file}", GetBundleAsync).RequireRateLimiting(ClippyBot.Registry.Web.RegistryRateLimits.DownloadsPolicy);
        return app;
    }

    [GeneratedRegex(@"^(?<version>[1-9][0-9]{0,17})\.(?<role>root|snapshot|targets)\.json$", RegexOptions.CultureInvariant)]
    private static partial Regex VersionedFile();

    [GeneratedRegex(@"^(?<sha>[0-9a-f]{64})\.(?<version>[0-9A-Za-z.+-]{1,64})\.bundle$", RegexOptions.CultureInvariant)]
    private static partial Regex BundleFile();

    /// <summary>What a waiting PluginHost is told: a newer timestamp exists (an unsigned hint; it refreshes through TUF).</summary>
    public sealed record ChangeResponse(long Timestamp);

    /// <summary>Longest a request waits: under the callers' per-attempt HTTP timeout (10 s).</summary>
    public static readonly TimeSpan ChangeWait = TimeSpan.FromSeconds(8);

    /// <summary>
    /// The registry's announcements as a long poll: answers as soon as a timestamp newer than <paramref name="after"/>
    /// exists (200 with its version), or 204 after <see cref="ChangeWait"/>.
    /// </summary>
    private static async Task<Results<Ok<ChangeResponse>, NoContent, ValidationProblem>> WaitForChangeAsync(long? after, MetadataChanges changes, HttpContext context,
        IHostApplicationLifetime lifetime, CancellationToken ct)
    {
        if (after is not >= 0)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["after"] = ["The timestamp version you hold (a whole number ≥ 0)."] });
        }
        context.Response.Headers.CacheControl = "no-store";
        // A stopping replica lets its waiters go at once (they fall back on their interval).
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(ct, lifetime.ApplicationStopping);
        try
        {
            return await changes.WaitAsync(after.Value, ChangeWait, ClippyBot.ServiceDefaults.Edge.ClientAddressKey.Of(context.Connection.RemoteIpAddress), waiting.Token) is { } newer
                ? TypedResults.Ok(new ChangeResponse(newer)) : TypedResults.NoContent();
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            return TypedResults.NoContent();
        }
    }

    private static async Task<Results<FileContentHttpResult, NotFound>> GetMetadataAsync(string file, RegistryDbContext db, RegistrySigner signer, HttpContext context, CancellationToken ct)
    {
        if (file == "timestamp.json")
        {
            var timestamp = await db.MetadataFiles.AsNoTracking().Where(f => f.Role == TufRole.Timestamp).OrderByDescending(f => f.Version)
                .Select(f => f.Content).FirstOrDefaultAsync(ct);
            // The one file whose name does not change: never cached anywhere on the way.
            context.Response.Headers.CacheControl = "no-store";
            return timestamp is null ? TypedResults.NotFound() : TypedResults.File(timestamp, "application/json");
        }
        if (VersionedFile().Match(file) is not { Success: true } match)
        {
            return TypedResults.NotFound();
        }
        var version = long.Parse(match.Groups["version"].Value, System.Globalization.CultureInfo.InvariantCulture);
        var role = match.Groups["role"].Value;
        var content = role == TufRole.Root
            ? signer.RootFile(version)
            : await db.MetadataFiles.AsNoTracking().Where(f => f.Role == role && f.Version == version).Select(f => f.Content).FirstOrDefaultAsync(ct);
        if (content is null)
        {
            // A root version that does not exist yet is how clients learn they hold the newest: not cacheable.
            context.Response.Headers.CacheControl = "no-store";
            return TypedResults.NotFound();
        }
        // A versioned file never changes.
        context.Response.Headers.CacheControl = "public, max-age=31536000, immutable";
        return TypedResults.File(content, "application/json");
    }

    private static async Task<Results<FileContentHttpResult, NotFound>> GetBundleAsync(string pluginId, string file, RegistryDbContext db, HttpContext context, CancellationToken ct)
    {
        if (BundleFile().Match(file) is not { Success: true } match)
        {
            return TypedResults.NotFound();
        }
        var sha = match.Groups["sha"].Value;
        var version = match.Groups["version"].Value;
        var bundle = await db.Versions.AsNoTracking()
            .Where(v => v.PluginId == pluginId && v.Version == version && v.Sha256 == sha && v.Status == VersionStatus.Approved)
            .Select(v => v.Bundle).FirstOrDefaultAsync(ct);
        if (bundle is null)
        {
            return TypedResults.NotFound();
        }
        context.Response.Headers.CacheControl = "public, max-age=31536000, immutable";
        return TypedResults.File(bundle, "application/octet-stream");
    }
}
