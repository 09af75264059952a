using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// A service's database: the resource the service references (its connection string is the runtime role's), and — where
/// the AppHost made per-database roles (local mode) — the owner role's connection string, given only to the service's
/// migrator.
/// </summary>
public sealed record ServiceDatabase(IResourceBuilder<IResourceWithConnectionString> Resource, ReferenceExpression? OwnerConnectionString)
{
    public string Name => Resource.Resource.Name;
}

/// <summary>The cache, and — where it has per-service ACL users (local mode: redis-server or Garnet) — each service's own connection string.</summary>
public sealed record ServiceCache(IResourceBuilder<IResourceWithConnectionString> Resource, Func<string, ReferenceExpression>? ConnectionStringFor);

/// <summary>The data stores the services reference; identical names and connection strings in both modes.</summary>
public sealed record ClippyBotInfrastructure(
    InfrastructureMode Mode,
    ServiceDatabase IdentityDatabase,
    ServiceDatabase ApiDatabase,
    ServiceDatabase SubjectKeysDatabase,
    ServiceDatabase PluginsDatabase,
    ServiceDatabase RegistryDatabase,
    ServiceCache Cache,
    DevelopmentCertificates? Certificates,
    string DataRoot);

public static class InfrastructureExtensions
{
    public const string PostgresName = "postgres";

    /// <summary>The cluster of people's keys: its backups age out within 30 days of an erasure, unlike the main cluster's (docs/privacy.md).</summary>
    public const string KeysPostgresName = "postgres-subjectkeys";
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
        // The same clusters, archiving and schedules as local mode, in containers (docs/backup.md, "Containers mode"; not
        // run on this machine kind: no container runtime). Containers mode keeps Aspire's one server login.
        var options = LocalInfrastructureOptions.From(builder);
        var images = ContainerBackups.ContainerImages.Add(builder);
        var postgres = builder.AddArchivingPostgres(PostgresName, BackupScheduleExtensions.ResourceName, BackupCadence.From(options), images,
            ["identitydb", "apidb", "pluginsdb", "registrydb"]);
        var keys = builder.AddArchivingPostgres(KeysPostgresName, BackupScheduleExtensions.KeysResourceName, options.KeysCadence, images, ["subjectkeysdb"]);
        var cache = builder.AddRedis(CacheName);
        var dataRoot = LocalInfrastructureOptions.DefaultDataRoot(builder.AppHostDirectory);
        return new(InfrastructureMode.Containers,
            new(postgres.AddDatabase("identitydb"), null),
            new(postgres.AddDatabase("apidb"), null),
            new(keys.AddDatabase("subjectkeysdb"), null),
            new(postgres.AddDatabase("pluginsdb"), null),
            new(postgres.AddDatabase("registrydb"), null),
            new(cache, null),
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

        // A checkout the postgres OS user cannot reach (under /root, or a 0700 mktemp folder) keeps its cluster elsewhere,
        // unless a data directory was chosen explicitly (then the error names the fix).
        var (clusterFolder, moved) = options.Persistent && string.IsNullOrWhiteSpace(options.DataDirectory)
            ? PostgresCluster.ClusterFolderFor(dataRoot, repositoryRoot)
            : (Path.Combine(dataRoot, "postgres"), false);
        if (moved)
        {
            builder.Services.AddHostedService(sp => new StartupNote(sp.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>(),
                $"The postgres OS user cannot reach this checkout; its PostgreSQL cluster is kept in {clusterFolder} (persistent, one per checkout)."));
        }
        // Continuous archiving and point-in-time recovery when pgBackRest is installed; when not, the dashboard says so.
        var notArchiving = ClippyBot.Backup.PointInTime.PgBackRest.Locate() is null
            ? "Not archiving: pgbackrest is not installed (apt-get install -y pgbackrest), so there is no point-in-time recovery"
            : null;
        try
        {
            ClippyBot.Backup.PointInTime.PgBackRest.ShellSafe(Path.GetFullPath(clusterFolder));
        }
        catch (ClippyBot.Backup.BackupException e)
        {
            // A checkout under a folder with spaces still runs; it says why it cannot archive.
            notArchiving ??= "Not archiving: " + e.Message;
        }
        var archiving = notArchiving is null;
        var postgres = builder.AddLocalPostgres(PostgresName, postgresBin, options.PostgresPort, clusterFolder,
            archiving ? new BackupPlan(options.BackupRepositories, options.RecoveryWindow) : null);
        builder.AddBackupSchedule(BackupScheduleExtensions.ResourceName, postgres, BackupCadence.From(options), notArchiving);
        // People's keys live in a cluster of their own, so that its backups can age out within 30 days while the main
        // cluster's recovery window stays 30 days (which keeps backups up to window + full interval).
        var keysCadence = options.KeysCadence;
        var keys = builder.AddLocalPostgres(KeysPostgresName, postgresBin, options.KeysPostgresPort, clusterFolder + "-subjectkeys",
                archiving ? new BackupPlan([.. options.BackupRepositories.Select(r => Path.Combine(r, "subjectkeys"))], keysCadence.RecoveryWindow) : null)
            .WaitFor(postgres);
        keys.Resource.MovedFrom = postgres.Resource;
        builder.AddBackupSchedule(BackupScheduleExtensions.KeysResourceName, keys, keysCadence, notArchiving);
        if (postgres.Resource.Backups is { } pgBackRest && keys.Resource.Backups is { } keysPgBackRest && options.Persistent)
        {
            // The operator's pitr and drill commands find the configuration through these notes in the checkout's data folder.
            // Owner-only (never through a planted link): the commands refuse a pointer anyone else could have written.
            ClippyBot.Security.OwnerOnlyFile.Write(Path.Combine(dataRoot, ClippyBot.Backup.BackupCli.ConfigPointer), pgBackRest.ConfigFile + "\n");
            ClippyBot.Security.OwnerOnlyFile.Write(Path.Combine(dataRoot, ClippyBot.Backup.BackupCli.ConfigPointer + "-subjectkeys"), keysPgBackRest.ConfigFile + "\n");
        }
        else if (!archiving)
        {
            builder.Services.AddHostedService(sp => new StartupNote(sp.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>(),
                $"The local PostgreSQL cluster runs WITHOUT continuous archiving or point-in-time recovery. {notArchiving}."));
        }
        var cache = builder.AddLocalRedis(CacheName, options, dataRoot, repositoryRoot);
        // The backups' own signals for the Api's alert rules, as the AppHost's cache user.
        builder.Services.AddSingleton(sp => new BackupSignals(cache.Resource.ConnectionStringFor(BackupSignals.Source),
            builder.Configuration["Signals:KeyPrefix"] is { Length: > 0 } prefix ? prefix : ClippyBot.Contracts.SecuritySignalKeys.DefaultPrefix,
            TimeProvider.System, sp.GetRequiredService<Microsoft.Extensions.Logging.ILogger<BackupSignals>>()));
        if (!options.Persistent)
        {
            builder.Services.AddHostedService(_ => new ThrowawayDataCleanup(dataRoot, [postgres.Resource.Cluster, keys.Resource.Cluster]));
        }

        return new(InfrastructureMode.Local,
            Roles(postgres.AddDatabase("identitydb")),
            Roles(postgres.AddDatabase("apidb")),
            Roles(keys.AddDatabase("subjectkeysdb")),
            Roles(postgres.AddDatabase("pluginsdb")),
            Roles(postgres.AddDatabase("registrydb")),
            new(cache, cache.Resource.ConnectionStringFor),
            builder.AddDevelopmentCertificates(dataRoot),
            dataRoot);
    }

    private static ServiceDatabase Roles(IResourceBuilder<LocalPostgresDatabaseResource> database) =>
        new(database, database.Resource.OwnerConnectionStringExpression);

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
        var ca = certificates.LoadCaCertificate();
        builder.Services.ConfigureHttpClientDefaults(http => http.ConfigurePrimaryHttpMessageHandler((handler, _) => ClippyBot.Security.PrivateCaTrust.Apply(handler, ca)));
        return certificates;
    }

    /// <summary>One line in the AppHost's log at start.</summary>
    private sealed class StartupNote(Microsoft.Extensions.Logging.ILoggerFactory loggers, string message) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var logger = loggers.CreateLogger("ClippyBot.AppHost.Infrastructure");
            LogNote(logger, message, null);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        private static readonly Action<Microsoft.Extensions.Logging.ILogger, string, Exception?> LogNote =
            Microsoft.Extensions.Logging.LoggerMessage.Define<string>(Microsoft.Extensions.Logging.LogLevel.Information, new(1, "Note"), "{Message}");
    }

    /// <summary>Removes a throwaway cluster when the AppHost stops.</summary>
    private sealed class ThrowawayDataCleanup(string dataRoot, IReadOnlyList<PostgresCluster> clusters) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken)
        {
            try
            {
                foreach (var cluster in clusters)
                {
                    cluster.Stop();
                }
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
