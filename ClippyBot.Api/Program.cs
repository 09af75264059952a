using ClippyBot.Api;
using ClippyBot.Api.ApiKeys;
using ClippyBot.Api.Audit;
using ClippyBot.Api.Bench;
using ClippyBot.Api.Authentication;
using ClippyBot.Api.Data;
using ClippyBot.Api.OpenApi;
using ClippyBot.Api.RateLimiting;
using ClippyBot.Api.Workspaces;
using ClippyBot.Api.Caller;
using ClippyBot.ServiceDefaults.Data;
using ClippyBot.Api.Connections;
using ClippyBot.Api.Containment;
using ClippyBot.Api.Encryption;
using ClippyBot.Api.Files;
using ClippyBot.Api.Plugins;
using ClippyBot.Api.Privacy;
using ClippyBot.Api.Secrets;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<ApiDbContext>("apidb");
builder.AddServiceDatabase<SubjectKeysDbContext>("subjectkeysdb");
if (builder.RunsMigrationsOnly())
{
    await builder.MigrateAsync();
    return;
}
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
builder.AddApiDocumentation();

var app = builder.Build();

app.MapDefaultEndpoints();
app.UseApiCors();
app.UseApiAuthentication();
app.UseApiRateLimits();
app.UseAuthorization();
app.MapCallerApi();
app.MapWorkspacesApi();
app.MapApiKeysApi();
app.MapAuditApi();
app.MapContainmentApi();
app.MapEncryptionApi();
app.MapConnectionsApi();
app.MapSecretsApi();
app.MapFilesApi();
app.MapWorkspacePluginsApi();
app.MapPrivacyApi();
app.MapApiDocumentation();
app.MapBenchApi();

app.Run();
