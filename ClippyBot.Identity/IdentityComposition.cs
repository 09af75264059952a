using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.AccountSecurity;
using ClippyBot.Identity.Apps;
using ClippyBot.Identity.AuditAnchors;
using ClippyBot.Identity.Containment;
using ClippyBot.Identity.Edge;
using ClippyBot.Identity.Oidc;
using ClippyBot.Identity.Privacy;

namespace ClippyBot.Identity;

/// <summary>What Identity is made of: its services, its middleware in order, its endpoints (Program.cs calls the three).</summary>
public static class IdentityComposition
{
    public static WebApplicationBuilder AddIdentityServices(this WebApplicationBuilder builder)
    {
        builder.AddServiceCache();
        builder.AddSharedAddressMonitor();
        builder.AddAccounts();
        builder.AddAccountSecurity();
        builder.AddOidcServer();
        builder.AddApps();
        builder.AddContainment();
        builder.AddPrivacy();
        builder.AddAuditAnchors();
        return builder;
    }

    /// <summary>The whole middleware order, top to bottom.</summary>
    public static WebApplication UseIdentityPipeline(this WebApplication app)
    {
        app.UseServiceDefaults();
        // Sees every request's client address (after forwarded headers): an address carrying most of the traffic is taken
        // for an untrusted proxy, since every per-address limit would count all its users as one.
        app.UseSharedAddressMonitor();
        app.UseSignInPopupOpenerPolicy();
        // CORS and the failure block of the token endpoints, then the client-credentials fast path: all before
        // authentication, where OpenIddict answers.
        app.UseOidcTokenEndpoint();
        app.UseStaticFiles();
        app.UseAuthentication();
        app.UseAuthorization();
        return app;
    }

    public static WebApplication MapIdentityEndpoints(this WebApplication app)
    {
        app.MapDefaultEndpoints();
        app.MapAccountPages();
        app.MapOidcEndpoints();
        app.MapApps();
        app.MapContainmentApi();
        app.MapPrivacyApi();
        app.MapAuditAnchorApi();
        return app;
    }
}
