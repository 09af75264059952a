using ClippyBot.Contracts;
using System.Text.Json;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Plugins.Sandbox;
using ClippyBot.ServiceDefaults.Authentication;
using ClippyBot.ServiceDefaults.Http;
using ClippyBot.PluginHost.Data;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.PluginHost.Plugins;

/// <summary>
/// The PluginHost's internal API. Callers are services with a client-credentials token from Identity for audience
/// <c>clippybot-pluginhost</c> whose client is listed in <c>PluginHost:AllowedClients</c> (the Api); nobody else gets in,
/// and the AppHost gives the service no public endpoint.
/// </summary>
public static class PluginEndpoints
{
    public const string Audience = Audiences.PluginHost;

    /// <param name="PermissionRequests">Every permission with its parameters (hosts, providers, secret names, kv quota), as consent shows them.</param>
    /// <param name="ReviewedAt">When the community registry approved this version (null without a registry).</param>
    public sealed record InstalledResponse(string Id, string Version, string Signer, IReadOnlyList<string> Permissions, IReadOnlyList<string> OAuthProviders,
        IReadOnlyList<string> SecretNames, IReadOnlyList<PermissionRequest> PermissionRequests, DateTimeOffset? ReviewedAt = null)
    {
        public static InstalledResponse From(PluginManifest manifest, string signer, DateTimeOffset? reviewedAt = null) =>
            new(manifest.Id, manifest.Version, signer, [.. manifest.Permissions.Select(p => p.Name)], manifest.OAuthProviders, manifest.SecretNames,
                [.. manifest.Permissions.Select(p => new PermissionRequest(p.Name, p.Parameters ?? new Dictionary<string, JsonElement>()))], reviewedAt);
    }

    /// <param name="OAuthTokens">Access tokens of the workspace's connections, by provider, for <c>oauth:use</c>: held in memory for this invocation only.</param>
    /// <param name="Secrets">Workspace secrets the plugin was granted, by name, for <c>secrets:read</c>: held in memory for this invocation only.</param>
    /// <param name="Version">The version the workspace consented to; it runs (under its own manifest) even when a newer one is current.</param>
    public sealed record InvokeRequest(Guid WorkspaceId, string? Event, JsonElement Input, IReadOnlyList<string>? Grants, IReadOnlyDictionary<string, string>? OAuthTokens,
        IReadOnlyDictionary<string, string>? Secrets, string? Version = null);

    public sealed record InvokeResponse(string Outcome, string Kind, JsonElement? Output, IReadOnlyList<string> Messages, long FuelUsed, double DurationMs, string? Version);

    public sealed record QuarantineRequest(string? Version, Guid? WorkspaceId, string? Reason, string? By);

    public static IHostApplicationBuilder AddPluginApi(this IHostApplicationBuilder builder)
    {
        var allowed = builder.Configuration.GetSection("PluginHost:AllowedClients").GetChildren().Select(c => c.Value).OfType<string>().ToList();
        if (allowed.Count == 0)
        {
            allowed.Add("clippybot-api-service");
        }
        builder.Services.AddAuthentication(JwtBearerDefaults.AuthenticationScheme).AddIdentityAccessTokens(builder, Audience);
        builder.Services.AddAuthorizationBuilder().SetFallbackPolicy(new AuthorizationPolicyBuilder()
            .RequireAuthenticatedUser()
            .RequireAssertion(c => c.User.FindFirst("client_id")?.Value is { } client && allowed.Contains(client, StringComparer.Ordinal))
            .Build());
        return builder;
    }

    public static WebApplication MapPluginApi(this WebApplication app)
    {
        var plugins = app.MapGroup("/internal/plugins").ExcludeFromDescription();
        plugins.MapPost("/", InstallAsync).WithMetadata(new RequestSizeLimitAttribute(PluginBundle.MaxBundleBytes));
        plugins.MapGet("/", ListAsync);
        plugins.MapGet("/withdrawals", WithdrawalsAsync);
        plugins.MapPost("/{pluginId}/invoke", InvokeAsync);
        plugins.MapGet("/{pluginId}/crashes", CrashesAsync);
        plugins.MapPost("/{pluginId}/quarantine", QuarantineAsync);
        plugins.MapPost("/{pluginId}/release", ReleaseAsync);
        // Outside /internal/plugins/{pluginId}: "quarantines" is a valid plugin id.
        app.MapPost("/internal/quarantines/release", ReleaseAllAsync).ExcludeFromDescription();
        app.MapGet("/internal/quarantines", RecentQuarantinesAsync).ExcludeFromDescription();
        return app;
    }

    private static async Task<Results<Created<InstalledResponse>, ProblemHttpResult>> InstallAsync(HttpRequest request, PluginCatalog catalog, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, ct);
        if (buffer.Length > PluginBundle.MaxBundleBytes)
        {
            return Problem(StatusCodes.Status413PayloadTooLarge, ProblemTypes.PluginTooLarge, "Bundle too large", $"Bundles may be at most {PluginBundle.MaxBundleBytes} bytes.");
        }
        buffer.Position = 0;
        try
        {
            var verified = await catalog.InstallAsync(buffer, ct);
            return TypedResults.Created($"/internal/plugins/{verified.Manifest.Id}", InstalledResponse.From(verified.Manifest, verified.SignerKeyId));
        }
        catch (BundleException e)
        {
            var status = e.Error == BundleError.NotNewer ? StatusCodes.Status409Conflict : StatusCodes.Status400BadRequest;
            return Problem(status, ProblemTypes.Of("plugin-" + e.Error.ToString().ToLowerInvariant()), "Bundle refused", e.Message);
        }
        catch (PluginRejectedException e)
        {
            return Problem(StatusCodes.Status400BadRequest, ProblemTypes.PluginModuleRejected, "Module refused", e.Message);
        }
    }

    /// <summary>A version the community registry withdrew (yanked, or its publisher key revoked), with the registry's reason.</summary>
    public sealed record WithdrawalResponse(string PluginId, string Version, string Reason, DateTimeOffset At);

    /// <summary>The registry's platform-wide quarantines still in force: the Api tells the workspaces that installed them.</summary>
    private static async Task<Ok<List<WithdrawalResponse>>> WithdrawalsAsync(PluginsDbContext db, CancellationToken ct) =>
        TypedResults.Ok(await db.Quarantines.AsNoTracking()
            .Where(q => q.SetBy == Registry.RegistrySync.QuarantinedBy && q.WorkspaceId == null && q.ReleasedAt == null)
            // Newest first: a backlog of old withdrawals never hides a new one.
            .OrderByDescending(q => q.At).Take(1000)
            .Select(q => new WithdrawalResponse(q.PluginId, q.Version, q.Reason, q.At)).ToListAsync(ct));

    /// <summary>A quarantine as the Api's alert rules see it.</summary>
    public sealed record QuarantineResponse(Guid Id, string PluginId, string Version, Guid? WorkspaceId, string Reason, string SetBy, DateTimeOffset At);

    /// <summary>Quarantines set in the last two hours (the alert rules' horizon), newest first, at most 500.</summary>
    private static async Task<Ok<List<QuarantineResponse>>> RecentQuarantinesAsync(PluginsDbContext db, TimeProvider time, CancellationToken ct)
    {
        var since = time.GetUtcNow().AddHours(-2);
        return TypedResults.Ok(await db.Quarantines.AsNoTracking().Where(q => q.At >= since).OrderByDescending(q => q.At).Take(500)
            .Select(q => new QuarantineResponse(q.Id, q.PluginId, q.Version, q.WorkspaceId, q.Reason, q.SetBy, q.At)).ToListAsync(ct));
    }

    private static async Task<Ok<List<InstalledResponse>>> ListAsync(PluginsDbContext db, Registry.RegistryTrust registry, CancellationToken ct)
    {
        var rows = await db.InstalledPlugins.AsNoTracking().Where(p => p.Current).OrderBy(p => p.PluginId).ToListAsync(ct);
        return TypedResults.Ok(rows.Select(r => InstalledResponse.From(ManifestValidator.Parse(r.ManifestBytes).Manifest!, r.SignerKeyId,
            registry.ReviewedAt(r.PluginId, r.Version))).ToList());
    }

    private static async Task<Results<BufferedJson<InvokeResponse>, ProblemHttpResult>> InvokeAsync(string pluginId, InvokeRequest request, PluginInvoker invoker,
        PluginsDbContext db, CancellationToken ct)
    {
        var input = JsonSerializer.SerializeToUtf8Bytes(request.Input);
        var result = await invoker.InvokeAsync(pluginId, request.WorkspaceId, request.Event ?? "on_message", input, (request.Grants ?? []).ToHashSet(StringComparer.Ordinal), ct,
            new InvocationCredentials(request.OAuthTokens, request.Secrets), request.Version);
        if (result.Outcome == InvocationOutcome.Refused && result.Kind is "not_installed" or "version_not_installed")
        {
            return Problem(StatusCodes.Status404NotFound, ProblemTypes.PluginNotInstalled, "Plugin not installed",
                request.Version is null ? $"No plugin {pluginId} is installed." : $"{pluginId} {request.Version} is not installed.");
        }
        if (result.Outcome == InvocationOutcome.Refused && result.Kind == "quarantined")
        {
            // A registry withdrawal's reason is public (the registry published it, signed); an operator's or a rule's is not shown.
            var withdrawn = await db.Quarantines.AsNoTracking()
                .Where(q => q.PluginId == pluginId && q.SetBy == Registry.RegistrySync.QuarantinedBy && q.ReleasedAt == null && q.WorkspaceId == null
                            && (result.Version == null || q.Version == result.Version))
                .Select(q => q.Reason).FirstOrDefaultAsync(ct);
            return Problem(StatusCodes.Status423Locked, ProblemTypes.PluginQuarantined, "Plugin quarantined", withdrawn is not null
                ? $"{pluginId} {result.Version} was {withdrawn}. A newer approved version can be adopted."
                : $"{pluginId} is quarantined; a platform administrator must release it.");
        }
        JsonElement? output = null;
        if (result.Succeeded)
        {
            try
            {
                output = JsonDocument.Parse(result.Output).RootElement.Clone();
            }
            catch (JsonException)
            {
                return new BufferedJson<InvokeResponse>(new InvokeResponse("Trapped", "output_not_json", null, result.Messages, result.FuelUsed, result.Duration.TotalMilliseconds, result.Version));
            }
        }
        return new BufferedJson<InvokeResponse>(new InvokeResponse(result.Outcome.ToString(), result.Kind, output, result.Messages, result.FuelUsed, result.Duration.TotalMilliseconds, result.Version));
    }

    private static async Task<Ok<List<CrashLogEntry>>> CrashesAsync(string pluginId, PluginsDbContext db, int? limit, CancellationToken ct) =>
        TypedResults.Ok(await db.CrashLog.AsNoTracking().Where(c => c.PluginId == pluginId).OrderByDescending(c => c.Id).Take(Math.Clamp(limit ?? 100, 1, 1000)).ToListAsync(ct));

    private static async Task<Results<NoContent, ValidationProblem>> QuarantineAsync(string pluginId, QuarantineRequest request, PluginInvoker invoker, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Reason) || string.IsNullOrWhiteSpace(request.By))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["reason"] = ["Give the reason and who asked (by)."] });
        }
        await invoker.QuarantineAsync(pluginId, request.Version ?? "*", request.WorkspaceId, request.Reason, request.By, ct);
        return TypedResults.NoContent();
    }

    private static async Task<Ok<int>> ReleaseAsync(string pluginId, QuarantineRequest request, PluginInvoker invoker, CancellationToken ct) =>
        TypedResults.Ok(await invoker.ReleaseAsync(pluginId, request.Version ?? "*", request.By ?? "unknown", ct));

    private static async Task<Ok<int>> ReleaseAllAsync(QuarantineRequest request, PluginInvoker invoker, CancellationToken ct) =>
        TypedResults.Ok(await invoker.ReleaseAllAsync(request.By ?? "unknown", ct));

    private static ProblemHttpResult Problem(int status, string type, string title, string detail) =>
        TypedResults.Problem(statusCode: status, title: title, detail: detail, type: type);
}
