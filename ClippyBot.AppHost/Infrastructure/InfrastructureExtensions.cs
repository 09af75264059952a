using ClippyBot.ServiceDefaults.Edge;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>The data stores the services reference; identical names and connection strings in both modes.</summary>
public sealed record ClippyBotInfrastructure(
    InfrastructureMode Mode,
    IResourceBuilder<IResourceWithConnectionString> IdentityDatabase,
    IResourceBuilder<IResourceWithConnectionString> ApiDatabase,
    IResourceBuilder<IResourceWithConnectionString> SubjectKeysDatabase,
    IResourceBuilder<IResourceWithConnectionString> PluginsDatabase,
    IResourceBuilder<IResourceWithConnectionString> Cache,
    DevelopmentCertificates? Certificates,
    string DataRoot);

public static class InfrastructureExtensions
{
    public const string PostgresName = "postgres";
    public const string CacheName = "cache";

    public static ClippyBotInfrastructure AddClippyBotInfrastructure(this IDistributedApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return InfrastructureModeResolver.Resolve(builder) switch
        {
            InfrastructureMode.Containers => AddContainers(builder),
            _ => AddLocalProcesses(builder),
        };
    }

    private static ClippyBotInfrastructure AddContainers(IDistributedApplicationBuilder builder)
    {
        var postgres = builder.AddPostgres(PostgresName).WithDataVolume("clippybot-postgres-data");
        var cache = builder.AddRedis(CacheName);
        var dataRoot = LocalInfrastructureOptions.DefaultDataRoot(builder.AppHostDirectory);
        return new(InfrastructureMode.Containers,
            postgres.AddDatabase("identitydb"),
            postgres.AddDatabase("apidb"),
            postgres.AddDatabase("subjectkeysdb"),
            postgres.AddDatabase("pluginsdb"),
            cache,
            builder.AddDevelopmentCertificates(dataRoot),
            dataRoot);
    }

    private static ClippyBotInfrastructure AddLocalProcesses(IDistributedApplicationBuilder builder)
    {
        // Every check that can fail runs before anything is written or started.
        var options = LocalInfrastructureOptions.From(builder);
        var postgresBin = PostgresCluster.LocateBinaries(options.PostgresBinDirectory);
        var repositoryRoot = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."));
        var dataRoot = options.ResolveDataRoot(builder.AppHostDirectory);

        var postgres = builder.AddLocalPostgres(PostgresName, postgresBin, options.PostgresPort, dataRoot);
        var cache = builder.AddLocalRedis(CacheName, options, dataRoot, repositoryRoot);
        if (!options.Persistent)
        {
            builder.Services.AddHostedService(_ => new ThrowawayDataCleanup(dataRoot, postgres.Resource.Cluster));
        }

        return new(InfrastructureMode.Local,
            postgres.AddDatabase("identitydb"),
            postgres.AddDatabase("apidb"),
            postgres.AddDatabase("subjectkeysdb"),
            postgres.AddDatabase("pluginsdb"),
            cache,
            builder.AddDevelopmentCertificates(dataRoot),
            dataRoot);
    }

    /// <summary>
    /// Run mode: the local CA and server certificate (see <see cref="DevelopmentCertificates"/>), and the AppHost's own
    /// HttpClients (health checks, tests' clients) trust the CA. Publish mode: none — deployments bring their own certificates.
    /// </summary>
    private static DevelopmentCertificates? AddDevelopmentCertificates(this IDistributedApplicationBuilder builder, string dataRoot)
    {
        if (builder.ExecutionContext.IsPublishMode)
        {
            return null;
        }
        var certificates = DevelopmentCertificates.Ensure(Path.Combine(dataRoot, "tls"), TimeProvider.System);
        builder.Services.TrustForOutgoingHttps(certificates.LoadCaCertificate());
        return certificates;
    }

    /// <summary>Removes a throwaway cluster when the AppHost stops.</summary>
    private sealed class ThrowawayDataCleanup(string dataRoot, PostgresCluster cluster) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken)
        {
            try
            {
                cluster.Stop();
                Directory.Delete(dataRoot, recursive: true);
            }
            catch (IOException)
            {
                // Best effort: it is a temp folder.
            }
            catch (UnauthorizedAccessException)
            {
            }
            return Task.CompletedTask;
        }
    }
}
