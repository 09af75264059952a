using ClippyBot.Registry.Metadata;
using ClippyBot.Registry.Versions;

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
        return builder;
    }

    /// <summary>The whole middleware order, top to bottom: the metadata is public and read-only.</summary>
    public static WebApplication UseRegistryPipeline(this WebApplication app)
    {
        app.UseServiceDefaults();
        return app;
    }

    public static WebApplication MapRegistryEndpoints(this WebApplication app)
    {
        app.MapDefaultEndpoints();
        app.MapMetadataEndpoints();
        return app;
    }
}
