using ClippyBot.Api.ApiKeys;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Authentication;
using ClippyBot.Api.Bench;
using ClippyBot.Api.Caller;
using ClippyBot.Api.Connections;
using ClippyBot.Api.Containment;
using ClippyBot.Api.Detection;
using ClippyBot.Api.Data;
using ClippyBot.Api.Encryption;
using ClippyBot.Api.Files;
using ClippyBot.Api.Incidents;
using ClippyBot.Api.Investigation;
using ClippyBot.Api.OpenApi;
using ClippyBot.Api.Operations;
using ClippyBot.Api.Plugins;
using ClippyBot.Api.Privacy;
using ClippyBot.Api.RateLimiting;
using ClippyBot.Api.Secrets;
using ClippyBot.Api.SecurityConsole;
using ClippyBot.Api.Workspaces;
using ClippyBot.ServiceDefaults.Data;

namespace ClippyBot.Api;

/// <summary>What the Api is made of: its services, its middleware in order, its endpoints (Program.cs calls the three).</summary>
public static class ApiComposition
{
    public static WebApplicationBuilder AddApiServices(this WebApplicationBuilder builder)
    {
        builder.AddServiceCache();
        builder.AddSealedDataProtection<ApiDbContext>("api", "Encryption:KeyEncryptionKey");
        builder.AddApiConventions();
        builder.AddApiCors();
        builder.AddApiAuthentication();
        builder.AddApiKeys();
        builder.AddApiRateLimits();
        builder.AddWorkspaces();
        builder.AddAudit();
        builder.AddContainment();
        builder.AddEncryption();
        builder.AddConnections();
        builder.AddSecrets();
        builder.AddFiles();
        builder.AddWorkspacePlugins();
        builder.AddPrivacy();
        builder.AddDetection();
        builder.AddIncidents();
        builder.AddSecurityConsole();
        builder.AddApiDocumentation();
        return builder;
    }

    /// <summary>The whole middleware order, top to bottom.</summary>
    public static WebApplication UseApiPipeline(this WebApplication app)
    {
        app.UseServiceDefaults();
        app.UseApiCors();
        // Bearer tokens and API keys, then the revocation check (fail-closed) on every authenticated request.
        app.UseApiAuthentication();
        // After authentication, so a limit counts per caller (user or API key), not per address alone.
        app.UseApiRateLimits();
        app.UseAuthorization();
        return app;
    }

    public static WebApplication MapApiEndpoints(this WebApplication app)
    {
        app.MapDefaultEndpoints();
        app.MapCallerApi();
        app.MapWorkspacesApi();
        app.MapApiKeysApi();
        app.MapAuditApi();
        app.MapContainmentApi();
        app.MapOperationsApi();
        app.MapEncryptionApi();
        app.MapConnectionsApi();
        app.MapSecretsApi();
        app.MapFilesApi();
        app.MapWorkspacePluginsApi();
        app.MapPrivacyApi();
        app.MapDetectionApi();
        app.MapIncidentsApi();
        app.MapInvestigationApi();
        app.MapSecurityConsole();
        app.MapApiDocumentation();
        app.MapBenchApi();
        return app;
    }
}
