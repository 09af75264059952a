using ClippyBot.PluginHost.Bundles;
using ClippyBot.PluginHost.Sandbox;

namespace ClippyBot.PluginHost.Plugins;

public static class PluginsExtensions
{
    /// <summary>Trust store, sandbox runtime, catalog (install/update/load), invoker (crash log, metrics, quarantine).</summary>
    public static IHostApplicationBuilder AddPlugins(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<SandboxOptions>().Bind(builder.Configuration.GetSection(SandboxOptions.SectionName));
        builder.Services.AddOptions<QuarantineOptions>().Bind(builder.Configuration.GetSection(QuarantineOptions.SectionName));
        builder.Services.AddSingleton(sp => PluginTrustStore.FromConfiguration(sp.GetRequiredService<IConfiguration>()));
        builder.Services.AddSingleton<PluginRuntime>();
        builder.Services.AddSingleton<CompiledPluginCache>();
        builder.Services.AddSingleton<PluginMetrics>();
        builder.Services.AddScoped<PluginCatalog>();
        builder.Services.AddScoped<PluginInvoker>();
        builder.Services.AddSingleton<CrashLogRetention>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CrashLogRetention>());
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(PluginMetrics.MeterName));
        return builder;
    }
}
