using ClippyBot.Plugins.Bundles;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>The community registry's development keys and first-party bundles, and the PluginHost's trust in the registry.</summary>
public static partial class RegistryResources
{
    /// <summary>
    /// The development key ceremony (<see cref="RegistryKeyCeremony"/>, under <c>.clippybot/registry/</c>), and in the
    /// background the example plugins built from source and signed with the first-party key into <c>bundles/</c>, where the
    /// registry picks them up, checks and (development) approves them.
    /// </summary>
    public static (RegistryKeys Keys, string BundlesFolder) AddRegistryKeys(this IDistributedApplicationBuilder builder, string dataRoot)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var folder = Path.Combine(dataRoot, "registry");
        var keys = RegistryKeyCeremony.EnsureDevelopmentKeys(folder, TimeProvider.System);
        var bundles = Path.Combine(folder, "bundles");
        Directory.CreateDirectory(bundles);
        var repositoryRoot = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."));
        builder.Services.AddHostedService(sp => new ExamplePluginBundles(repositoryRoot, bundles, Convert.FromBase64String(keys.FirstPartyPrivateKey),
            sp.GetRequiredService<ILoggerFactory>().CreateLogger("ClippyBot.AppHost.ExamplePlugins")));
        return (keys, bundles);
    }

    /// <summary>The registry's root files, online keys (secret parameters) and first-party publisher.</summary>
    public static IResourceBuilder<ProjectResource> WithRegistryKeys(this IResourceBuilder<ProjectResource> registry, RegistryKeys keys, string bundlesFolder)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(keys);
        var builder = registry.ApplicationBuilder;
        for (var i = 0; i < keys.Roots.Count; i++)
        {
            registry.WithEnvironment($"Registry__Roots__{i}", keys.Roots[i]);
        }
        return registry
            .WithEnvironment("Registry__TargetsKey", builder.AddParameter("registry-targets-key", keys.TargetsSeed, secret: true))
            .WithEnvironment("Registry__SnapshotKey", builder.AddParameter("registry-snapshot-key", keys.SnapshotSeed, secret: true))
            .WithEnvironment("Registry__TimestampKey", builder.AddParameter("registry-timestamp-key", keys.TimestampSeed, secret: true))
            .WithEnvironment("Registry__FirstParty__PublicKey", keys.FirstPartyPublicKey)
            .WithEnvironment("Registry__FirstParty__BundlesFolder", bundlesFolder)
            // Development only: first-party versions that pass every automated check are approved without a reviewer.
            .WithEnvironment("Registry__FirstParty__AutoApprove", "true")
            // The examples' bundles appear once built: they are picked up within seconds.
            .WithEnvironment("Registry__RefreshCheckInterval", "00:00:05");
    }

    /// <summary>The PluginHost pins the registry's first root and installs only what its signed targets list.</summary>
    public static IResourceBuilder<ProjectResource> WithRegistryTrust(this IResourceBuilder<ProjectResource> pluginHost, IResourceBuilder<ProjectResource> registry, RegistryKeys keys)
    {
        ArgumentNullException.ThrowIfNull(pluginHost);
        ArgumentNullException.ThrowIfNull(keys);
        return pluginHost.WithReference(registry)
            .WithEnvironment("Plugins__Registry__Address", "https+http://registry")
            .WithEnvironment("Plugins__Registry__Root", keys.PinnedRoot);
    }

    /// <summary>Builds the example plugins (plugins/examples/build.sh, AssemblyScript from npm) and signs each version once.</summary>
    private sealed partial class ExamplePluginBundles(string repositoryRoot, string bundlesFolder, byte[] firstPartyKey, ILogger logger) : BackgroundService
    {
        private static readonly string[] Examples = ["counter", "fetcher"];

        protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Run(() =>
        {
            var examples = Path.Combine(repositoryRoot, "plugins", "examples");
            try
            {
                ProcessRunner.Run("bash", [Path.Combine(examples, "build.sh")], TimeSpan.FromMinutes(5), examples);
                foreach (var name in Examples)
                {
                    var manifestBytes = File.ReadAllBytes(Path.Combine(examples, "out", name + ".manifest.json"));
                    var (manifest, errors) = ManifestValidator.Parse(manifestBytes);
                    if (manifest is null)
                    {
                        LogNotBuilt(logger, name, string.Join("; ", errors));
                        continue;
                    }
                    // One signed bundle per version: a version once submitted is never replaced by other bytes.
                    var file = Path.Combine(bundlesFolder, $"{manifest.Id}-{manifest.Version}.cbp");
                    if (File.Exists(file))
                    {
                        continue;
                    }
                    var bundle = new PluginBundle(manifestBytes, File.ReadAllBytes(Path.Combine(examples, "out", name + ".wasm")), []);
                    bundle = bundle.WithSignature(PluginSigning.Sign(bundle, firstPartyKey, DateTimeOffset.UtcNow));
                    using (var stream = File.Create(file + ".tmp"))
                    {
                        bundle.Write(stream);
                    }
                    File.Move(file + ".tmp", file, overwrite: true);
                    LogSigned(logger, manifest.Id, manifest.Version);
                }
            }
            catch (Exception e) when (e is InvalidOperationException or IOException or System.ComponentModel.Win32Exception or BundleException)
            {
                LogNotBuilt(logger, "examples", e.Message + " (Node.js and npm build them: apt-get install -y nodejs npm)");
            }
        }, stoppingToken);

        [LoggerMessage(1, LogLevel.Information, "Example plugin {PluginId} {Version} built and signed with the first-party key for the registry")]
        private static partial void LogSigned(ILogger logger, string pluginId, string version);

        [LoggerMessage(2, LogLevel.Warning, "Example plugin {Name} not built: {Message}")]
        private static partial void LogNotBuilt(ILogger logger, string name, string message);
    }
}
