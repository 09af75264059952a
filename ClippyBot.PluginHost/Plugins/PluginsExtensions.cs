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
        builder.Services.AddSingleton<PluginHttp>();
        var allowList = builder.Configuration.GetSection($"{SandboxOptions.SectionName}:HttpPrivateNetworkAllowList").GetChildren()
            .Select(c => c.Value).OfType<string>().Select(System.Net.IPNetwork.Parse).ToList();
        var developmentCa = builder.Configuration[ClippyBot.ServiceDefaults.Edge.PrivateCertificateAuthority.TrustedCaFileKey] is { Length: > 0 } caFile
            ? ClippyBot.ServiceDefaults.Edge.PrivateCertificateAuthority.Load(caFile)
            : null;
        // A plugin's request is tried once (it may not be idempotent), within its own budget: the defaults' standard handler
        // (which retries) is replaced by one that does not.
#pragma warning disable EXTEXP0001 // RemoveAllResilienceHandlers is marked experimental; it is the documented way to replace the defaults' handler.
        builder.Services.AddHttpClient(PluginHttp.HttpClientName)
            .ConfigurePrimaryHttpMessageHandler(() => PluginHttp.CreateHandler(allowList, developmentCa))
            .RemoveAllResilienceHandlers()
            .AddStandardResilienceHandler(o =>
            {
                o.Retry.ShouldHandle = _ => ValueTask.FromResult(false);
                o.AttemptTimeout.Timeout = TimeSpan.FromSeconds(5);
                o.TotalRequestTimeout.Timeout = TimeSpan.FromSeconds(6);
                o.CircuitBreaker.SamplingDuration = TimeSpan.FromSeconds(10);
            });
#pragma warning restore EXTEXP0001
        builder.Services.AddSingleton<CompiledPluginCache>();
        builder.Services.AddSingleton<PluginState>();
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
