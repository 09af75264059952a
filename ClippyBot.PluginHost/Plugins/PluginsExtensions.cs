using ClippyBot.Plugins.Bundles;
using ClippyBot.Plugins.Sandbox;

namespace ClippyBot.PluginHost.Plugins;

public static class PluginsExtensions
{
    /// <summary>Trust store, sandbox runtime, catalog (install/update/load), invoker (crash log, metrics, quarantine).</summary>
    public static IHostApplicationBuilder AddPlugins(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<SandboxOptions>().Bind(builder.Configuration.GetSection(SandboxOptions.SectionName));
        builder.Services.AddOptions<QuarantineOptions>().Bind(builder.Configuration.GetSection(QuarantineOptions.SectionName));
        builder.Services.AddOptions<PluginStateOptions>().Bind(builder.Configuration.GetSection(PluginStateOptions.SectionName))
            .Validate<IHostEnvironment>(PluginStateOptions.IsSafe, PluginStateOptions.SafeRange)
            .ValidateOnStart();
        builder.Services.AddOptions<Registry.RegistryTrustOptions>().Bind(builder.Configuration.GetSection(Registry.RegistryTrustOptions.SectionName))
            .Validate(o => !o.Enabled || o.Root.Length > 0, "Plugins:Registry:Root (the pinned root metadata, base64) is required with Plugins:Registry:Address.")
            .Validate(o => o.RefreshInterval >= TimeSpan.FromMilliseconds(200), "Plugins:Registry:RefreshInterval must be at least 200 ms.")
            .ValidateOnStart();
        builder.Services.AddSingleton<Registry.RegistryTrust>();
        var registry = builder.Configuration.GetSection(Registry.RegistryTrustOptions.SectionName).Get<Registry.RegistryTrustOptions>() ?? new();
        if (registry.Enabled)
        {
            // With a registry the keys come from its verified targets (each publisher key for its own plugin ids), not configuration.
            builder.Services.AddScoped(sp => sp.GetRequiredService<Registry.RegistryTrust>().Store);
            builder.Services.AddHttpClient(Registry.RegistrySync.HttpClientName, c => c.BaseAddress = new Uri(registry.Address.TrimEnd('/') + "/"));
            builder.Services.AddSingleton<Registry.RegistrySync>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<Registry.RegistrySync>());
            builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(Registry.RegistryTrust.MeterName));
        }
        else
        {
            builder.Services.AddSingleton(sp => PluginTrustConfiguration.Load(sp.GetRequiredService<IConfiguration>()));
        }
        builder.Services.AddSingleton<PluginRuntime>();
        var allowList = builder.Configuration.GetSection($"{SandboxOptions.SectionName}:HttpPrivateNetworkAllowList").GetChildren()
            .Select(c => c.Value).OfType<string>().Select(System.Net.IPNetwork.Parse).ToList();
        var developmentCa = builder.Configuration[ClippyBot.ServiceDefaults.Edge.PrivateCertificateAuthority.TrustedCaFileKey] is { Length: > 0 } caFile
            ? ClippyBot.Security.PrivateCaTrust.Load(caFile)
            : null;
        // The plugins' own client (see PluginHttp): built here, not by the factory, so none of the services' client defaults
        // (service discovery, retries, a circuit breaker shared by every tenant) apply. Each request is tried once.
        builder.Services.AddSingleton(sp => new PluginHttp(new HttpClient(PluginHttp.CreateHandler(allowList, developmentCa)), sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<SandboxOptions>>()));
        builder.Services.AddSingleton<CompiledPluginCache>();
        builder.Services.AddSingleton<PluginState>();
        builder.Services.AddSingleton<WorkspaceInvocationGate>();
        builder.Services.AddHostedService<PluginStateRefresher>();
        builder.Services.AddSingleton<PluginMetrics>();
        builder.Services.AddScoped<PluginCatalog>();
        builder.Services.AddScoped<PluginInvoker>();
        builder.Services.AddSingleton<CrashLogRetention>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<CrashLogRetention>());
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(PluginMetrics.MeterName));
        return builder;
    }
}
