using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using ClippyBot.Identity.AuditAnchors;
using ClippyBot.Identity.Containment;
using ClippyBot.Identity.Data;
using ClippyBot.Identity.Edge;
using ClippyBot.Identity.Oidc;
using ClippyBot.Identity.Privacy;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<IdentityDataContext>("identitydb");
if (builder.RunsMigrationsOnly())
{
    await builder.MigrateAsync();
    return;
}
builder.AddServiceCache();
builder.AddSharedAddressMonitor();
builder.AddAccounts();
builder.AddAccountSecurity();
builder.AddOidcServer();
builder.AddContainment();
builder.AddPrivacy();
builder.AddAuditAnchors();

var app = builder.Build();

app.MapDefaultEndpoints();
app.UseSharedAddressMonitor();
app.UseOidcTokenEndpoint();
app.MapAccountPages();
app.MapOidcEndpoints();
app.MapContainmentApi();
app.MapPrivacyApi();
app.MapAuditAnchorApi();

app.Run();
