using ClippyBot.Registry.Metadata;
using ClippyBot.Registry.Publishers;
using ClippyBot.Registry.Reviews;
using ClippyBot.Registry.Versions;
using ClippyBot.Registry.Web;
using ClippyBot.ServiceDefaults.Data;

namespace ClippyBot.Registry;

/// <summary>What the registry is made of: its services, its middleware in order, its endpoints (Program.cs calls the three).</summary>
public static class RegistryComposition
{
    public static WebApplicationBuilder AddRegistryServices(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<RegistryOptions>().Bind(builder.Configuration.GetSection(RegistryOptions.SectionName));
        builder.Services.AddSingleton<RegistrySigner>();
        builder.Services.AddScoped<MetadataPublisher>();
        builder.Services.AddOptions<ReviewOptions>().Bind(builder.Configuration.GetSection(ReviewOptions.SectionName));
        builder.Services.AddSingleton<ModuleReview>();
        builder.Services.AddScoped<Submissions>();
        builder.Services.AddScoped<FirstPartySeeding>();
        builder.Services.AddSingleton<FirstPartySeeding.SubmittedBundles>();
        builder.Services.AddHostedService<MetadataRefresher>();
        builder.Services.AddSingleton<MetadataChanges>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<MetadataChanges>());
        // Publishers and reviewers come with Identity's access tokens for this audience (first-party clients' "registry"
        // scope): as bearer tokens on the API, or through the pages' sign-in, which keeps the same token's claims.
        builder.AddRegistrySignIn();
        // Rate limits on the platform's shared counter (the registry's own cache user: clippybot:registry:* only).
        builder.AddServiceCache();
        builder.AddRegistryRateLimits();
        builder.Services.AddSingleton(sp => AuditChainKey.FromConfiguration(sp.GetRequiredService<IConfiguration>()));
        // Session and anti-forgery cookies open on every replica and after restarts: one sealed key ring in registrydb.
        builder.AddSealedDataProtection<Data.RegistryDbContext>("registry", "Registry:KeyEncryptionKey");
        var plainHttp = builder.AllowsPlainHttp("Identity:AllowHttp");
        builder.Services.AddAntiforgery(o =>
        {
            o.Cookie.Name = plainHttp ? "clippybot.registry.af" : "__Host-clippybot.registry.af";
            o.Cookie.SecurePolicy = plainHttp ? CookieSecurePolicy.SameAsRequest : CookieSecurePolicy.Always;
        });
        builder.Services.AddRazorPages(o =>
        {
            o.Conventions.AuthorizeFolder("/Publish", PublisherEndpoints.PolicyName);
            o.Conventions.AuthorizeFolder("/Review", Reviews.ReviewEndpoints.ReviewerPolicy);
        });
        builder.Services.AddScoped<Microsoft.AspNetCore.Authorization.IAuthorizationMiddlewareResultHandler, RefusalAudit>();
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy(PublisherEndpoints.PolicyName, p => p.RequireAuthenticatedUser()
                // A verified address and a second factor in this sign-in: a publisher's account signs code others run.
                .RequireClaim("email_verified", "true")
                .RequireClaim("amr", "mfa"))
            .AddPolicy(Reviews.ReviewEndpoints.ReviewerPolicy, p => p.RequireAuthenticatedUser()
                .RequireClaim("role", ClippyBot.Contracts.PlatformRoles.PluginReviewer).RequireClaim("amr", "mfa"))
            .AddPolicy(AuditEndpoints.AdministratorPolicy, p => p.RequireAuthenticatedUser().RequireClaim("amr", "mfa")
                .RequireClaim("role", ClippyBot.Contracts.PlatformRoles.Administrator))
            .AddPolicy(Reviews.ReviewEndpoints.YankPolicy, p => p.RequireAuthenticatedUser().RequireClaim("amr", "mfa")
                .RequireClaim("role", ClippyBot.Contracts.PlatformRoles.PluginReviewer, ClippyBot.Contracts.PlatformRoles.Administrator));
        return builder;
    }

    /// <summary>The whole middleware order, top to bottom: the metadata is public and read-only; publishers and reviewers sign in (pages: anti-forgery on every form).</summary>
    public static WebApplication UseRegistryPipeline(this WebApplication app)
    {
        app.UseServiceDefaults();
        app.UseStaticFiles();
        app.UseAuthentication();
        // After authentication (a limit per person once signed in), before authorization (a refused flood is cut before
        // its audit rows are written).
        app.UseRateLimiter();
        app.UseAuthorization();
        return app;
    }

    public static WebApplication MapRegistryEndpoints(this WebApplication app)
    {
        app.MapDefaultEndpoints();
        app.MapMetadataEndpoints();
        app.MapPublisherEndpoints();
        app.MapReviewEndpoints();
        app.MapAuditEndpoints();
        app.MapRazorPages();
        return app;
    }
}
