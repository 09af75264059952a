using ClippyBot.PluginHost.Data;
using ClippyBot.PluginHost.Plugins;
using ClippyBot.ServiceDefaults.Data;

namespace ClippyBot.PluginHost;

/// <summary>What the PluginHost is made of: its services, its middleware in order, its endpoints (Program.cs calls the three).</summary>
public static class PluginHostComposition
{
    public static WebApplicationBuilder AddPluginHostServices(this WebApplicationBuilder builder)
    {
        builder.AddSealedDataProtection<PluginsDbContext>("pluginhost", "Encryption:KeyEncryptionKey");
        builder.AddPlugins();
        builder.AddPluginApi();
        return builder;
    }

    /// <summary>The whole middleware order, top to bottom: every endpoint but health needs the Api's client token.</summary>
    public static WebApplication UsePluginHostPipeline(this WebApplication app)
    {
        app.UseServiceDefaults();
        app.UseAuthentication();
        app.UseAuthorization();
        return app;
    }

    public static WebApplication MapPluginHostEndpoints(this WebApplication app)
    {
        app.MapDefaultEndpoints();
        app.MapPluginApi();
        return app;
    }
}
