using System.Security.Claims;
using System.Text.Json;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Data;
using ClippyBot.Api.ServiceClients;
using ClippyBot.Api.Workspaces;
using ClippyBot.ServiceDefaults.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Http.Resilience;

namespace ClippyBot.Api.Plugins;

/// <summary>
/// Plugins for workspaces: the verified catalog, install with explicit consent to the permissions, configuration,
/// events delivered to a plugin, removal; and for platform administrators, publishing bundles, crash logs and quarantine.
/// The PluginHost does the running; the Api decides who may ask and keeps the consent and the audit trail.
/// </summary>
public static class PluginEndpoints
{
    public const int MaxConfigurationBytes = 16 * 1024;

    public sealed record InstallRequest(string? PluginId, IReadOnlyList<string>? AcceptedPermissions);

    public sealed record WorkspacePluginResponse(string PluginId, string ConsentedVersion, IReadOnlyList<string> GrantedPermissions, JsonElement Configuration, DateTimeOffset InstalledAt);

    public sealed record EventRequest(string? Event, JsonElement Payload);

    public sealed record QuarantineRequest(string? Version, Guid? WorkspaceId, string? Reason);

    public static IHostApplicationBuilder AddWorkspacePlugins(this IHostApplicationBuilder builder)
    {
        // Interactive path: fail over fast. Two quick retries, 2 s per attempt, 5 s in all, then 503 (and the breaker opens).
        // Reads only: a POST (an event, a publication, a quarantine) is never sent twice — a retried event whose first
        // answer was lost would run the plugin, and its side effects, again. The defaults' standard handler is replaced.
#pragma warning disable EXTEXP0001 // RemoveAllResilienceHandlers is marked experimental; it is the documented way to replace the defaults' handler.
        builder.Services.AddHttpClient<PluginHostClient>(PluginHostClient.HttpClientName)
            .RemoveAllResilienceHandlers()
            .AddStandardResilienceHandler(o =>
            {
                o.Retry.MaxRetryAttempts = 2;
                o.Retry.DisableForUnsafeHttpMethods();
                o.Retry.Delay = TimeSpan.FromMilliseconds(200);
                o.AttemptTimeout.Timeout = TimeSpan.FromSeconds(2);
                o.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(5);
                o.CircuitBreaker.SamplingDuration = TimeSpan.FromSeconds(10);
            });
#pragma warning restore EXTEXP0001
        return builder;
    }

    public static IEndpointRouteBuilder MapWorkspacePluginsApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/plugins", CatalogAsync).WithTags("Plugins");
        var workspace = app.MapGroup("/api/workspaces/{workspaceId:guid}/plugins").WithTags("Plugins");
        workspace.MapGet("/", ListAsync).RequirePermission(Permission.PluginManagement);
        workspace.MapPost("/", InstallAsync).RequirePermission(Permission.PluginManagement);
        workspace.MapPut("/{pluginId}/configuration", ConfigureAsync).RequirePermission(Permission.PluginManagement);
        workspace.MapDelete("/{pluginId}", RemoveAsync).RequirePermission(Permission.PluginManagement);
        workspace.MapPost("/{pluginId}/events", DeliverAsync).RequirePermission(Permission.DataWrite);

        var admin = app.MapGroup("/api/admin/plugins").WithTags("Plugins").RequireAuthorization(Containment.ContainmentEndpoints.PolicyName);
        admin.MapPost("/", PublishAsync).WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(40L * 1024 * 1024));
        admin.MapGet("/{pluginId}/crashes", CrashesAsync);
        admin.MapPost("/{pluginId}/quarantine", (string pluginId, QuarantineRequest request, [AsParameters] PluginServices services, CancellationToken ct) => SetQuarantineAsync(pluginId, request, true, services, ct));
        admin.MapPost("/{pluginId}/release", (string pluginId, QuarantineRequest request, [AsParameters] PluginServices services, CancellationToken ct) => SetQuarantineAsync(pluginId, request, false, services, ct));
        return app;
    }

    private static async Task<Results<Ok<IReadOnlyList<PluginHostClient.CatalogEntry>>, ProblemHttpResult>> CatalogAsync(PluginHostClient host, CancellationToken ct)
    {
        try
        {
            return TypedResults.Ok(await host.CatalogAsync(ct));
        }
        catch (ServiceUnavailableException e)
        {
            return Unavailable(e);
        }
    }

    private static async Task<Ok<List<WorkspacePluginResponse>>> ListAsync(Guid workspaceId, ApiDbContext db, CancellationToken ct)
    {
        var rows = await db.WorkspacePlugins.AsNoTracking().Where(p => p.WorkspaceId == workspaceId).OrderBy(p => p.PluginId).ToListAsync(ct);
        return TypedResults.Ok(rows.Select(ToResponse).ToList());
    }

    /// <summary>Consent: the caller must accept exactly the permissions the plugin requests — no more, no fewer.</summary>
    private static async Task<Results<Created<WorkspacePluginResponse>, ProblemHttpResult, ValidationProblem>> InstallAsync(
        Guid workspaceId, InstallRequest request, ClaimsPrincipal user, [AsParameters] PluginServices services, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.PluginId))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["pluginId"] = ["Name the plugin to install."] });
        }
        IReadOnlyList<PluginHostClient.CatalogEntry> catalog;
        try
        {
            catalog = await services.Host.CatalogAsync(ct);
        }
        catch (ServiceUnavailableException e)
        {
            return Unavailable(e);
        }
        if (catalog.SingleOrDefault(p => p.Id == request.PluginId) is not { } plugin)
        {
            return Problem(StatusCodes.Status404NotFound, "plugin-not-found", "Plugin not found", $"No verified plugin {request.PluginId} is published.");
        }
        var accepted = (request.AcceptedPermissions ?? []).ToHashSet(StringComparer.Ordinal);
        if (!accepted.SetEquals(plugin.Permissions))
        {
            var providers = plugin.OAuthProviders is { Count: > 0 } p ? $" (oauth:use of the workspace's {string.Join(", ", p)} connection)" : "";
            var secrets = plugin.SecretNames is { Count: > 0 } n ? $" (secrets:read of the workspace secrets {string.Join(", ", n)})" : "";
            return Problem(StatusCodes.Status400BadRequest, "consent-required", "Accept the plugin's permissions",
                $"{plugin.Id} {plugin.Version} asks for: {(plugin.Permissions.Count == 0 ? "no permissions" : string.Join(", ", plugin.Permissions))}{providers}{secrets}. Send exactly these as acceptedPermissions to install it.");
        }
        if (await services.Db.WorkspacePlugins.AnyAsync(p => p.WorkspaceId == workspaceId && p.PluginId == plugin.Id, ct))
        {
            return Problem(StatusCodes.Status409Conflict, "plugin-already-installed", "Already installed", $"{plugin.Id} is already installed in this workspace.");
        }
        var row = new WorkspacePlugin
        {
            WorkspaceId = workspaceId, PluginId = plugin.Id, ConsentedVersion = plugin.Version, GrantedPermissions = [.. plugin.Permissions],
            GrantedOAuthProviders = plugin.Permissions.Contains("oauth:use") ? [.. plugin.OAuthProviders ?? []] : [],
            GrantedSecretNames = plugin.Permissions.Contains("secrets:read") ? [.. plugin.SecretNames ?? []] : [],
            InstalledBy = user.FindFirstValue("sub") ?? user.FindFirstValue(ApiKeys.ApiKeyClaims.KeyId) ?? "?", InstalledAt = services.Time.GetUtcNow(),
        };
        services.Db.WorkspacePlugins.Add(row);
        await services.Db.SaveChangesAsync(ct);
        await services.Cache.InvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "plugin.installed",
            $"{plugin.Id}:{plugin.Version}:{string.Join(',', plugin.Permissions)}{(row.GrantedOAuthProviders.Count > 0 ? ":oauth=" + string.Join(',', row.GrantedOAuthProviders) : "")}{(row.GrantedSecretNames.Count > 0 ? ":secrets=" + string.Join(',', row.GrantedSecretNames) : "")}", ct: ct);
        return TypedResults.Created($"/api/workspaces/{workspaceId}/plugins/{plugin.Id}", ToResponse(row));
    }

    private static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> ConfigureAsync(
        Guid workspaceId, string pluginId, JsonElement configuration, [AsParameters] PluginServices services, CancellationToken ct)
    {
        var json = configuration.GetRawText();
        if (configuration.ValueKind != JsonValueKind.Object || json.Length > MaxConfigurationBytes)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["configuration"] = [$"Send a JSON object of at most {MaxConfigurationBytes} bytes."] });
        }
        var updated = await services.Db.WorkspacePlugins.Where(p => p.WorkspaceId == workspaceId && p.PluginId == pluginId)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.ConfigurationJson, json), ct);
        if (updated == 0)
        {
            return NotInstalled(pluginId);
        }
        await services.Cache.InvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "plugin.configured", pluginId, ct: ct);
        return TypedResults.NoContent();
    }

    private static async Task<Results<NoContent, ProblemHttpResult>> RemoveAsync(Guid workspaceId, string pluginId, [AsParameters] PluginServices services, CancellationToken ct)
    {
        if (await services.Db.WorkspacePlugins.Where(p => p.WorkspaceId == workspaceId && p.PluginId == pluginId).ExecuteDeleteAsync(ct) == 0)
        {
            return NotInstalled(pluginId);
        }
        await services.Cache.InvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "plugin.removed", pluginId, ct: ct);
        return TypedResults.NoContent();
    }

    /// <summary>Delivers an event (e.g. a chat message) to the plugin with the permissions the workspace granted.</summary>
    private static async Task<Results<BufferedJson<PluginHostClient.InvocationResponse>, ProblemHttpResult, ValidationProblem, JsonHttpResult<JsonElement>>> DeliverAsync(
        Guid workspaceId, string pluginId, EventRequest request, [AsParameters] PluginServices services, CancellationToken ct)
    {
        // Shared read-only across requests of this replica until the workspace's plugins change (WorkspaceStateCache).
        var installed = await services.Cache.GetOrLoadAsync(workspaceId, "plugin:" + pluginId, c =>
            services.Db.WorkspacePlugins.AsNoTracking().SingleOrDefaultAsync(p => p.WorkspaceId == workspaceId && p.PluginId == pluginId, c), ct);
        if (installed is null)
        {
            return NotInstalled(pluginId);
        }
        if (string.IsNullOrWhiteSpace(request.Event))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["event"] = ["Name the event, e.g. on_message."] });
        }
        using var configuration = JsonDocument.Parse(installed.ConfigurationJson);
        var input = JsonSerializer.SerializeToElement(new { @event = request.Event, payload = request.Payload, configuration = configuration.RootElement });
        // oauth:use: the newest connection of each consented provider, opened in memory for this call only.
        var oauthTokens = new Dictionary<string, string>(StringComparer.Ordinal);
        if (installed.GrantedPermissions.Contains("oauth:use"))
        {
            foreach (var provider in installed.GrantedOAuthProviders)
            {
                var connectionId = await services.Db.OAuthConnections.Where(c => c.WorkspaceId == workspaceId && c.Provider == provider)
                    .OrderByDescending(c => c.CreatedAt).Select(c => (Guid?)c.Id).FirstOrDefaultAsync(ct);
                if (connectionId is { } id && await services.Vault.OpenAsync(workspaceId, id, ct) is { } tokens)
                {
                    oauthTokens[provider] = tokens.AccessToken;
                }
            }
        }
        // secrets:read: only the consented names, opened in memory for this call only.
        var secrets = installed.GrantedPermissions.Contains("secrets:read")
            ? await services.Secrets.OpenAsync(workspaceId, installed.GrantedSecretNames, ct)
            : [];
        try
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var result = await services.Host.InvokeAsync(pluginId, workspaceId, request.Event, input, installed.GrantedPermissions, oauthTokens, secrets, ct);
            // The Api → PluginHost → Api leg as the Api saw it (W3C Server-Timing), for callers and the bench.
            services.Context.Response.Headers["Server-Timing"] = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"pluginhost;dur={System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.000}");
            if (result.Outcome != "Completed")
            {
                await services.Audit.RecordAsync(workspaceId, "plugin.failed", $"{pluginId}:{result.Outcome}:{result.Kind}", "failed", ct);
            }
            return new BufferedJson<PluginHostClient.InvocationResponse>(result);
        }
        catch (ServiceUnavailableException e)
        {
            return Unavailable(e);
        }
        catch (PluginHostClient.PluginHostProblemException p)
        {
            return TypedResults.Json(p.Problem, statusCode: (int)p.Status, contentType: "application/problem+json");
        }
    }

    private static async Task<Results<Created<PluginHostClient.CatalogEntry>, ProblemHttpResult, JsonHttpResult<JsonElement>>> PublishAsync(
        HttpRequest http, [AsParameters] PluginServices services, CancellationToken ct)
    {
        try
        {
            var entry = await services.Host.InstallAsync(http.Body, ct);
            await services.Audit.RecordAsync(null, "plugin.published", $"{entry.Id}:{entry.Version}:{entry.Signer}", ct: ct);
            return TypedResults.Created($"/api/plugins/{entry.Id}", entry);
        }
        catch (ServiceUnavailableException e)
        {
            return Unavailable(e);
        }
        catch (PluginHostClient.PluginHostProblemException p)
        {
            await services.Audit.RecordAsync(null, "plugin.published", "refused", "denied", ct);
            return TypedResults.Json(p.Problem, statusCode: (int)p.Status, contentType: "application/problem+json");
        }
    }

    private static async Task<Results<Ok<JsonElement>, ProblemHttpResult>> CrashesAsync(string pluginId, PluginHostClient host, CancellationToken ct)
    {
        try
        {
            return TypedResults.Ok(await host.CrashesAsync(pluginId, ct));
        }
        catch (ServiceUnavailableException e)
        {
            return Unavailable(e);
        }
    }

    private static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> SetQuarantineAsync(
        string pluginId, QuarantineRequest request, bool quarantine, PluginServices services, CancellationToken ct)
    {
        if (quarantine && string.IsNullOrWhiteSpace(request.Reason))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["reason"] = ["Say why (it is kept with the quarantine)."] });
        }
        var by = services.Context.User.FindFirstValue("sub") ?? "unknown";
        try
        {
            await services.Host.SetQuarantineAsync(pluginId, quarantine, request.Version ?? "*", request.WorkspaceId, request.Reason ?? "", by, ct);
        }
        catch (ServiceUnavailableException e)
        {
            return Unavailable(e);
        }
        await services.Audit.RecordAsync(request.WorkspaceId, quarantine ? "plugin.quarantined" : "plugin.released", $"{pluginId}:{request.Version ?? "*"}", ct: ct);
        if (request.WorkspaceId is not null)
        {
            await services.Audit.RecordAsync(null, quarantine ? "plugin.quarantined" : "plugin.released", $"{pluginId}:{request.Version ?? "*"}:{request.WorkspaceId}", ct: ct);
        }
        return TypedResults.NoContent();
    }

    private static WorkspacePluginResponse ToResponse(WorkspacePlugin p) =>
        new(p.PluginId, p.ConsentedVersion, p.GrantedPermissions, JsonDocument.Parse(p.ConfigurationJson).RootElement.Clone(), p.InstalledAt);

    private static ProblemHttpResult NotInstalled(string pluginId) =>
        Problem(StatusCodes.Status404NotFound, "plugin-not-installed", "Plugin not installed", $"{pluginId} is not installed in this workspace.");

    private static ProblemHttpResult Unavailable(ServiceUnavailableException e) =>
        Problem(StatusCodes.Status503ServiceUnavailable, "pluginhost-unavailable", "Plugins are unavailable", e.Message + " Retry shortly.");

    private static ProblemHttpResult Problem(int status, string type, string title, string detail) =>
        TypedResults.Problem(statusCode: status, title: title, detail: detail, type: "https://clippybot.dev/problems/" + type);
}

public sealed class PluginServices(ApiDbContext db, PluginHostClient host, AuditLog audit, TimeProvider time, HttpContext context, Connections.OAuthVault vault,
    Secrets.SecretVault secrets, Workspaces.WorkspaceStateCache cache)
{
    public Workspaces.WorkspaceStateCache Cache { get; } = cache;

    public Connections.OAuthVault Vault { get; } = vault;

    public Secrets.SecretVault Secrets { get; } = secrets;

    public ApiDbContext Db { get; } = db;

    public PluginHostClient Host { get; } = host;

    public AuditLog Audit { get; } = audit;

    public TimeProvider Time { get; } = time;

    public HttpContext Context { get; } = context;
}
