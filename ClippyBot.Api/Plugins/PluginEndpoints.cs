using ClippyBot.Contracts;
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

    /// <param name="Version">The version whose permissions were shown; when given, consent is refused if the catalog has moved on.</param>
    public sealed record InstallRequest(string? PluginId, IReadOnlyList<string>? AcceptedPermissions, string? Version = null);

    /// <summary>Consent to a newer version that asks for more than the workspace consented to.</summary>
    public sealed record ConsentRequest(string? Version, IReadOnlyList<string>? AcceptedPermissions);

    /// <param name="ConsentedPermissions">What runs is bounded by these (names and every parameter).</param>
    /// <param name="UpdateAwaitingConsent">A newer version asks for more; the consented version keeps running until an owner or admin accepts it.</param>
    public sealed record WorkspacePluginResponse(string PluginId, string ConsentedVersion, IReadOnlyList<string> GrantedPermissions, IReadOnlyList<PermissionRequest> ConsentedPermissions,
        JsonElement Configuration, DateTimeOffset InstalledAt, PluginUpdate? UpdateAwaitingConsent);

    public sealed record PluginUpdate(string Version, IReadOnlyList<PermissionRequest> PermissionRequests);

    public sealed record EventRequest(string? Event, JsonElement Payload);

    public sealed record QuarantineRequest(string? Version, Guid? WorkspaceId, string? Reason);

    public static IHostApplicationBuilder AddWorkspacePlugins(this IHostApplicationBuilder builder)
    {
        // Interactive path: fail over fast. Two quick retries, 2 s per attempt, 5 s in all, then 503 (and the breaker opens).
        // Reads only: a POST (an event, a publication, a quarantine) is never sent twice — a retried event whose first
        // answer was lost would run the plugin, and its side effects, again. The defaults' standard handler is replaced.
#pragma warning disable EXTEXP0001 // RemoveAllResilienceHandlers is marked experimental; it is the documented way to replace the defaults' handler.
        builder.Services.AddSingleton<PluginCatalogCache>();
        builder.Services.AddOptions<PluginNoticeOptions>().Bind(builder.Configuration.GetSection(PluginNoticeOptions.SectionName));
        builder.Services.AddSingleton<WithdrawalNotifier>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<WithdrawalNotifier>());
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
        workspace.MapPost("/", InstallAsync).RequirePermission(Permission.PluginManagement).ProducesProblem(StatusCodes.Status409Conflict);
        workspace.MapPut("/{pluginId}/configuration", ConfigureAsync).RequirePermission(Permission.PluginManagement);
        workspace.MapPost("/{pluginId}/consent", ConsentAsync).RequirePermission(Permission.PluginManagement).ProducesProblem(StatusCodes.Status409Conflict);
        workspace.MapDelete("/{pluginId}", RemoveAsync).RequirePermission(Permission.PluginManagement);
        // 423: the plugin is quarantined (the PluginHost's refusal, passed on as it came).
        workspace.MapPost("/{pluginId}/events", DeliverAsync).RequirePermission(Permission.DataWrite).ProducesProblem(StatusCodes.Status423Locked);

        var admin = app.MapGroup("/api/admin/plugins").WithTags("Plugins").RequireAuthorization(Containment.ContainmentEndpoints.PolicyName);
        // The bundle is the raw body (no body parameter), so its refusals are declared here: refused bundle, newer version exists, too large.
        admin.MapPost("/", PublishAsync).WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(40L * 1024 * 1024))
            .ProducesProblem(StatusCodes.Status400BadRequest).ProducesProblem(StatusCodes.Status409Conflict).ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        admin.MapGet("/{pluginId}/crashes", CrashesAsync);
        admin.MapPost("/{pluginId}/quarantine", (string pluginId, QuarantineRequest request, [AsParameters] PluginServices services, CancellationToken ct) => SetQuarantineAsync(pluginId, request, true, services, ct));
        admin.MapPost("/{pluginId}/release", (string pluginId, QuarantineRequest request, [AsParameters] PluginServices services, CancellationToken ct) => SetQuarantineAsync(pluginId, request, false, services, ct));
        return app;
    }

    private static async Task<Ok<IReadOnlyList<PluginHostClient.CatalogEntry>>> CatalogAsync(PluginHostClient host, PluginCatalogCache catalog, CancellationToken ct)
    {
        return TypedResults.Ok(await catalog.GetAsync(host, ct));
    }

    private static async Task<Ok<List<WorkspacePluginResponse>>> ListAsync(Guid workspaceId, [AsParameters] PluginServices services, CancellationToken ct)
    {
        var rows = await services.Db.WorkspacePlugins.AsNoTracking().Where(p => p.WorkspaceId == workspaceId).OrderBy(p => p.PluginId).ToListAsync(ct);
        IReadOnlyList<PluginHostClient.CatalogEntry> catalog;
        try
        {
            catalog = await services.Catalog.GetAsync(services.Host, ct);
        }
        catch (ServiceUnavailableException)
        {
            // The list itself is the Api's; only the "update awaiting consent" part needs the PluginHost.
            catalog = [];
        }
        return TypedResults.Ok(rows.Select(r =>
        {
            var current = catalog.FirstOrDefault(c => c.Id == r.PluginId);
            var awaiting = current is not null && current.Version != r.ConsentedVersion && !PluginConsent.IsWithin(Requests(current), PluginConsent.Of(r))
                ? new PluginUpdate(current.Version, Requests(current))
                : null;
            return ToResponse(r, awaiting);
        }).ToList());
    }

    /// <summary>Consent: the caller must accept exactly the permissions the plugin requests — no more, no fewer.</summary>
    private static async Task<Results<Created<WorkspacePluginResponse>, ProblemHttpResult, ValidationProblem>> InstallAsync(
        Guid workspaceId, InstallRequest request, ClaimsPrincipal user, [AsParameters] PluginServices services, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.PluginId))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["pluginId"] = ["Name the plugin to install."] });
        }
        var catalog = await services.Host.CatalogAsync(ct);
        if (catalog.SingleOrDefault(p => p.Id == request.PluginId) is not { } plugin)
        {
            return Problem(StatusCodes.Status404NotFound, ProblemTypes.PluginNotFound, "Plugin not found", $"No verified plugin {request.PluginId} is published.");
        }
        // The version shown is part of the consent: without it, a publisher who ships wider permissions between the showing
        // and the accepting would have them consented silently. Missing, it is asked for with everything the version asks.
        if (ConsentRefused(plugin, request.Version ?? "", request.AcceptedPermissions, "install it", requireVersion: true) is { } refused)
        {
            return refused;
        }
        if (await services.Db.WorkspacePlugins.AnyAsync(p => p.WorkspaceId == workspaceId && p.PluginId == plugin.Id, ct))
        {
            return Problem(StatusCodes.Status409Conflict, ProblemTypes.PluginAlreadyInstalled, "Already installed", $"{plugin.Id} is already installed in this workspace.");
        }
        var row = new WorkspacePlugin
        {
            WorkspaceId = workspaceId, PluginId = plugin.Id, ConsentedVersion = plugin.Version,
            InstalledBy = user.FindFirstValue("sub") ?? user.FindFirstValue(ApiKeys.ApiKeyClaims.KeyId) ?? "?", InstalledAt = services.Time.GetUtcNow(),
        };
        Consent(row, plugin);
        services.Db.WorkspacePlugins.Add(row);
        await services.Db.SaveChangesAsync(ct);
        await services.Cache.InvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "plugin.installed", ConsentTarget(row), ct: ct);
        return TypedResults.Created($"/api/workspaces/{workspaceId}/plugins/{plugin.Id}", ToResponse(row, null));
    }

    /// <summary>An owner or admin accepts a newer version that asks for more than the workspace consented to.</summary>
    private static async Task<Results<Ok<WorkspacePluginResponse>, ProblemHttpResult, ValidationProblem>> ConsentAsync(
        Guid workspaceId, string pluginId, ConsentRequest request, [AsParameters] PluginServices services, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(request.Version))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["version"] = ["Name the version whose permissions you accept."] });
        }
        var row = await services.Db.WorkspacePlugins.SingleOrDefaultAsync(p => p.WorkspaceId == workspaceId && p.PluginId == pluginId, ct);
        if (row is null)
        {
            return NotInstalled(pluginId);
        }
        var plugin = (await services.Host.CatalogAsync(ct)).SingleOrDefault(p => p.Id == pluginId);
        if (plugin is null)
        {
            return Problem(StatusCodes.Status404NotFound, ProblemTypes.PluginNotFound, "Plugin not found", $"No verified plugin {pluginId} is published.");
        }
        if (ConsentRefused(plugin, request.Version, request.AcceptedPermissions, "consent to it") is { } refused)
        {
            await services.Audit.RecordAsync(workspaceId, "plugin.consented", $"{pluginId}:{request.Version}", "denied", ct);
            return refused;
        }
        var previous = row.ConsentedVersion;
        Consent(row, plugin);
        await services.Db.SaveChangesAsync(ct);
        await services.Cache.InvalidateAsync(workspaceId);
        await services.Audit.RecordAsync(workspaceId, "plugin.consented", $"{ConsentTarget(row)}:from={previous}", ct: ct);
        return TypedResults.Ok(ToResponse(row, null));
    }

    /// <summary>Null when <paramref name="accepted"/> is exactly what <paramref name="plugin"/> asks for (and, when given, the
    /// version shown is still the current one); otherwise the problem that explains every permission and parameter.</summary>
    private static ProblemHttpResult? ConsentRefused(PluginHostClient.CatalogEntry plugin, string? shownVersion, IReadOnlyList<string>? accepted, string action,
        bool requireVersion = false)
    {
        var versionMissing = requireVersion && string.IsNullOrEmpty(shownVersion);
        if (!versionMissing && shownVersion is not null && shownVersion != plugin.Version)
        {
            return Problem(StatusCodes.Status409Conflict, ProblemTypes.PluginVersionChanged, "The plugin has a different version now",
                $"{plugin.Id} is at {plugin.Version}, not {shownVersion}; review what {plugin.Version} asks for and {action} again.");
        }
        if (!versionMissing && (accepted ?? []).ToHashSet(StringComparer.Ordinal).SetEquals(plugin.Permissions))
        {
            return null;
        }
        var asks = Requests(plugin).Select(Describe).ToList();
        return Problem(StatusCodes.Status400BadRequest, ProblemTypes.ConsentRequired, "Accept the plugin's permissions",
            $"{plugin.Id} {plugin.Version} asks for: {(asks.Count == 0 ? "no permissions" : string.Join(", ", asks))}. Send exactly these names as acceptedPermissions, and version {plugin.Version}, to {action}.");
    }

    /// <summary>A permission in words, with every parameter (nothing an update could change goes unmentioned).</summary>
    private static string Describe(PermissionRequest request)
    {
        var parameters = request.Parameters ?? new Dictionary<string, JsonElement>();
        static string List(JsonElement e) => e.ValueKind == JsonValueKind.Array ? string.Join(", ", e.EnumerateArray().Select(x => x.ToString())) : e.ToString();
        var known = (request.Name, parameters.Count) switch
        {
            (PluginPermissions.OAuthUse, 1) when parameters.TryGetValue("providers", out var p) => $"oauth:use of the workspace's {List(p)} connection",
            (PluginPermissions.SecretsRead, 1) when parameters.TryGetValue("names", out var n) => $"secrets:read of the workspace secrets {List(n)}",
            (PluginPermissions.HttpFetch, 1) when parameters.TryGetValue("hosts", out var h) => $"http:fetch to {List(h)}",
            (PluginPermissions.StorageKv, 1) when parameters.TryGetValue("quotaBytes", out var q) => $"storage:kv of up to {q} bytes",
            (_, 0) => request.Name,
            _ => null,
        };
        return known ?? $"{request.Name} ({string.Join("; ", parameters.Select(p => $"{p.Key}: {p.Value.GetRawText()}"))})";
    }

    /// <summary>Records consent to exactly what <paramref name="plugin"/> asks for.</summary>
    private static void Consent(WorkspacePlugin row, PluginHostClient.CatalogEntry plugin)
    {
        row.ConsentedVersion = plugin.Version;
        row.GrantedPermissions = [.. plugin.Permissions];
        row.GrantedOAuthProviders = plugin.Permissions.Contains(PluginPermissions.OAuthUse) ? [.. plugin.OAuthProviders ?? []] : [];
        row.GrantedSecretNames = plugin.Permissions.Contains(PluginPermissions.SecretsRead) ? [.. plugin.SecretNames ?? []] : [];
        row.ConsentedPermissionsJson = PluginConsent.Serialize(Requests(plugin));
    }

    private static string ConsentTarget(WorkspacePlugin row) =>
        $"{row.PluginId}:{row.ConsentedVersion}:{string.Join(',', row.GrantedPermissions)}{(row.GrantedOAuthProviders.Count > 0 ? ":oauth=" + string.Join(',', row.GrantedOAuthProviders) : "")}{(row.GrantedSecretNames.Count > 0 ? ":secrets=" + string.Join(',', row.GrantedSecretNames) : "")}";

    /// <summary>The permissions with their parameters (an older PluginHost sends names only).</summary>
    private static IReadOnlyList<PermissionRequest> Requests(PluginHostClient.CatalogEntry plugin) =>
        plugin.PermissionRequests ?? [.. plugin.Permissions.Select(n => new PermissionRequest(n, null))];

    /// <summary>
    /// The version to run for <paramref name="installed"/>: a newer current version is adopted (recorded and audited) when it
    /// asks for nothing beyond the consent; otherwise the consented version keeps running.
    /// </summary>
    private static async Task<WorkspacePlugin> AdoptNarrowerUpdateAsync(Guid workspaceId, WorkspacePlugin installed, PluginServices services, CancellationToken ct)
    {
        IReadOnlyList<PluginHostClient.CatalogEntry> catalog;
        try
        {
            catalog = await services.Catalog.GetAsync(services.Host, ct);
        }
        catch (ServiceUnavailableException)
        {
            return installed;
        }
        if (catalog.FirstOrDefault(c => c.Id == installed.PluginId) is not { } current || current.Version == installed.ConsentedVersion
            || !PluginConsent.IsWithin(Requests(current), PluginConsent.Of(installed)))
        {
            return installed;
        }
        // The same consent record as an install or a re-consent would write (one derivation), written conditionally on the
        // version read, so concurrent deliveries adopt (and audit) it once.
        var next = new WorkspacePlugin { PluginId = installed.PluginId, ConsentedVersion = current.Version, InstalledBy = installed.InstalledBy };
        Consent(next, current);
        var adopted = await services.Db.WorkspacePlugins
            .Where(p => p.WorkspaceId == workspaceId && p.PluginId == installed.PluginId && p.ConsentedVersion == installed.ConsentedVersion)
            .ExecuteUpdateAsync(s => s.SetProperty(p => p.ConsentedVersion, next.ConsentedVersion)
                .SetProperty(p => p.GrantedPermissions, next.GrantedPermissions)
                .SetProperty(p => p.GrantedOAuthProviders, next.GrantedOAuthProviders)
                .SetProperty(p => p.GrantedSecretNames, next.GrantedSecretNames)
                .SetProperty(p => p.ConsentedPermissionsJson, next.ConsentedPermissionsJson), ct);
        await services.Cache.InvalidateAsync(workspaceId);
        if (adopted > 0)
        {
            await services.Audit.RecordAsync(workspaceId, "plugin.updated", $"{installed.PluginId}:{installed.ConsentedVersion}->{current.Version}:within-consent", ct: ct);
        }
        return await services.Db.WorkspacePlugins.AsNoTracking().SingleOrDefaultAsync(p => p.WorkspaceId == workspaceId && p.PluginId == installed.PluginId, ct) ?? installed;
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
        installed = await AdoptNarrowerUpdateAsync(workspaceId, installed, services, ct);
        using var configuration = JsonDocument.Parse(installed.ConfigurationJson);
        var input = JsonSerializer.SerializeToElement(new { @event = request.Event, payload = request.Payload, configuration = configuration.RootElement });
        // oauth:use: the newest connection of each consented provider, opened in memory for this call only.
        var oauthTokens = new Dictionary<string, string>(StringComparer.Ordinal);
        if (installed.GrantedPermissions.Contains(PluginPermissions.OAuthUse))
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
        var secrets = installed.GrantedPermissions.Contains(PluginPermissions.SecretsRead)
            ? await services.Secrets.OpenAsync(workspaceId, installed.GrantedSecretNames, ct)
            : [];
        try
        {
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            var result = await services.Host.InvokeAsync(pluginId, installed.ConsentedVersion, workspaceId, request.Event, input, installed.GrantedPermissions, oauthTokens, secrets, ct);
            // The Api → PluginHost → Api leg as the Api saw it (W3C Server-Timing), for callers and the bench.
            services.Context.Response.Headers["Server-Timing"] = string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"pluginhost;dur={System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.000}");
            if (result.Outcome != "Completed")
            {
                await services.Audit.RecordAsync(workspaceId, "plugin.failed", $"{pluginId}:{result.Outcome}:{result.Kind}", "failed", ct);
            }
            return new BufferedJson<PluginHostClient.InvocationResponse>(result);
        }
        catch (PluginHostClient.PluginHostProblemException p) when (p.Problem.ValueKind == JsonValueKind.Object)
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
            services.Catalog.Invalidate();
            await services.Audit.RecordAsync(null, "plugin.published", $"{entry.Id}:{entry.Version}:{entry.Signer}", ct: ct);
            return TypedResults.Created($"/api/plugins/{entry.Id}", entry);
        }
        catch (PluginHostClient.PluginHostProblemException p)
        {
            await services.Audit.RecordAsync(null, "plugin.published", "refused", "denied", ct);
            if (p.Problem.ValueKind != JsonValueKind.Object)
            {
                // No problem document (a bare 413 from the PluginHost's server): the one mapping answers with its status.
                throw;
            }
            return TypedResults.Json(p.Problem, statusCode: (int)p.Status, contentType: "application/problem+json");
        }
    }

    private static async Task<Ok<JsonElement>> CrashesAsync(string pluginId, PluginHostClient host, CancellationToken ct)
    {
        return TypedResults.Ok(await host.CrashesAsync(pluginId, ct));
    }

    internal static async Task<Results<NoContent, ProblemHttpResult, ValidationProblem>> SetQuarantineAsync(
        string pluginId, QuarantineRequest request, bool quarantine, PluginServices services, CancellationToken ct)
    {
        if (quarantine && string.IsNullOrWhiteSpace(request.Reason))
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["reason"] = ["Say why (it is kept with the quarantine)."] });
        }
        var by = services.Context.User.FindFirstValue("sub") ?? "unknown";
        var action = quarantine ? "plugin.quarantined" : "plugin.released";
        try
        {
            await services.Host.SetQuarantineAsync(pluginId, quarantine, request.Version ?? "*", request.WorkspaceId, request.Reason ?? "", by, ct);
        }
        catch (Exception e) when (e is PluginHostUnavailableException or PluginHostClient.PluginHostProblemException)
        {
            // A kill switch that did not take is what an incident review must find: recorded whatever the caller does next
            // (hanging up included), then answered by the one mapping (503 unreachable, or the PluginHost's refusal).
            await services.Audit.RecordAsync(request.WorkspaceId, action, $"{pluginId}:{request.Version ?? "*"}", "failed", CancellationToken.None);
            throw;
        }
        await services.Audit.RecordAsync(request.WorkspaceId, action, $"{pluginId}:{request.Version ?? "*"}", ct: ct);
        if (request.WorkspaceId is not null)
        {
            await services.Audit.RecordAsync(null, quarantine ? "plugin.quarantined" : "plugin.released", $"{pluginId}:{request.Version ?? "*"}:{request.WorkspaceId}", ct: ct);
        }
        return TypedResults.NoContent();
    }

    private static WorkspacePluginResponse ToResponse(WorkspacePlugin p, PluginUpdate? awaiting) =>
        new(p.PluginId, p.ConsentedVersion, p.GrantedPermissions, PluginConsent.Of(p), JsonDocument.Parse(p.ConfigurationJson).RootElement.Clone(), p.InstalledAt, awaiting);

    private static ProblemHttpResult NotInstalled(string pluginId) =>
        Problem(StatusCodes.Status404NotFound, ProblemTypes.PluginNotInstalled, "Plugin not installed", $"{pluginId} is not installed in this workspace.");

    private static ProblemHttpResult Problem(int status, string type, string title, string detail) =>
        TypedResults.Problem(statusCode: status, title: title, detail: detail, type: type);
}

public sealed class PluginServices(ApiDbContext db, PluginHostClient host, AuditLog audit, TimeProvider time, HttpContext context, Connections.OAuthVault vault,
    Secrets.SecretVault secrets, Workspaces.WorkspaceStateCache cache, PluginCatalogCache catalog)
{
    public PluginCatalogCache Catalog { get; } = catalog;

    public Workspaces.WorkspaceStateCache Cache { get; } = cache;

    public Connections.OAuthVault Vault { get; } = vault;

    public Secrets.SecretVault Secrets { get; } = secrets;

    public ApiDbContext Db { get; } = db;

    public PluginHostClient Host { get; } = host;

    public AuditLog Audit { get; } = audit;

    public TimeProvider Time { get; } = time;

    public HttpContext Context { get; } = context;
}
