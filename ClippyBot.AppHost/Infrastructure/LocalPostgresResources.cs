using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>A PostgreSQL server run from the machine's binaries; same name and connection-string shape as Aspire's container.</summary>
public sealed class LocalPostgresServerResource(string name, string command, string workingDirectory, ParameterResource password, PostgresCluster cluster)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    internal const string EndpointName = "tcp";

    public ParameterResource PasswordParameter { get; } = password;

    public PostgresCluster Cluster { get; } = cluster;

    public EndpointReference PrimaryEndpoint => field ??= new(this, EndpointName);

    public ReferenceExpression ConnectionStringExpression => ReferenceExpression.Create(
        $"Host={PrimaryEndpoint.Property(EndpointProperty.IPV4Host)};Port={PrimaryEndpoint.Property(EndpointProperty.Port)};Username={PostgresCluster.SuperUser};Password={PasswordParameter}");

    internal List<LocalPostgresDatabaseResource> Databases { get; } = [];

    /// <summary>A cluster where older versions kept this one's databases: they are moved here once (<see cref="DatabaseMove"/>).</summary>
    public LocalPostgresServerResource? MovedFrom { get; internal set; }

    /// <summary>pgBackRest for this cluster, when it archives (pgBackRest installed); else null.</summary>
    public ClippyBot.Backup.PointInTime.PgBackRest? Backups { get; internal set; }
}

/// <summary>
/// A database inside <see cref="LocalPostgresServerResource"/>, created with its two roles (<see cref="DatabaseRoles"/>)
/// when the server first becomes healthy. Its connection string is the runtime role's (rows only, no DDL); the
/// owner's is for the migrator alone.
/// </summary>
public sealed class LocalPostgresDatabaseResource(
    string name, string databaseName, LocalPostgresServerResource parent, ParameterResource ownerPassword, ParameterResource appPassword)
    : Resource(name), IResourceWithParent<LocalPostgresServerResource>, IResourceWithConnectionString
{
    public LocalPostgresServerResource Parent { get; } = parent;

    public string DatabaseName { get; } = databaseName;

    public ParameterResource OwnerPassword { get; } = ownerPassword;

    public ParameterResource AppPassword { get; } = appPassword;

    public ReferenceExpression ConnectionStringExpression => Connection(DatabaseRoles.App(DatabaseName), AppPassword);

    /// <summary>The owner role's connection string: migrations only.</summary>
    public ReferenceExpression OwnerConnectionStringExpression => Connection(DatabaseRoles.Owner(DatabaseName), OwnerPassword);

    private ReferenceExpression Connection(string role, ParameterResource password) => ReferenceExpression.Create(
        $"Host={Parent.PrimaryEndpoint.Property(EndpointProperty.IPV4Host)};Port={Parent.PrimaryEndpoint.Property(EndpointProperty.Port)};Username={role};Password={password};Database={DatabaseName}");
}

/// <summary>Backups of the local cluster: repositories (none = the defaults beside its data) and the recovery window.</summary>
public sealed record BackupPlan(IReadOnlyList<string> Repositories, TimeSpan RecoveryWindow);

public static partial class LocalPostgresBuilderExtensions
{
    [Microsoft.Extensions.Logging.LoggerMessage(Microsoft.Extensions.Logging.LogLevel.Warning, "Moved {Database} here from the {Previous} cluster (where older versions kept it) and dropped it there")]
    private static partial void LogMoved(Microsoft.Extensions.Logging.ILogger logger, string database, string previous);

    // SIGTERM asks PostgreSQL for a "smart" shutdown that waits for every pooled client to leave; the dashboard's Stop
    // must take effect at once, so the supervisor turns TERM into INT (fast shutdown: roll back, disconnect, checkpoint).
    // PostgreSQL writes its whole log (startup notes included) to stderr, which the dashboard shows as errors on a healthy
    // start; it goes to stdout instead (its own "ERROR:" lines still say so).
    private const string Supervisor = """
        "$@" 2>&1 &
        child=$!
        trap 'kill -INT "$child" 2>/dev/null' TERM INT
        status=0
        while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
        exit $status
        """;

    private const string PortPlaceholder = "{port}";

    /// <param name="backups">Where pgBackRest keeps the cluster's backups, and for how long; null = no archiving.</param>
    public static IResourceBuilder<LocalPostgresServerResource> AddLocalPostgres(
        this IDistributedApplicationBuilder builder, string name, string binDirectory, int port, string clusterFolder, BackupPlan? backups = null)
    {
        ArgumentNullException.ThrowIfNull(builder);

        var cluster = PostgresCluster.Create(clusterFolder, binDirectory);
        var password = builder.AddParameter($"{name}-password", cluster.EnsureInitialized(), secret: true);
        var server = new LocalPostgresServerResource(name, "/bin/bash", cluster.DataRoot, password.Resource, cluster);
        IReadOnlyList<string>? archiving = null;
        if (backups is not null)
        {
            var repositories = backups.Repositories.Count > 0
                ? backups.Repositories
                : [Path.Combine(cluster.DataRoot, "repo1"), Path.Combine(cluster.DataRoot, "repo2")];
            try
            {
                server.Backups = ClippyBot.Backup.PointInTime.PgBackRest.Configure(new(
                    Path.Combine(cluster.DataRoot, "pgbackrest"), repositories, cluster.DataDirectory, cluster.SocketDirectory, port, backups.RecoveryWindow));
            }
            catch (ClippyBot.Backup.BackupException e)
            {
                throw new InfrastructureConfigurationException($"LocalInfrastructure:BackupRepositories: {e.Message}");
            }
            archiving = server.Backups.ArchiveSettings(cluster.SocketDirectory);
        }
        var (fileName, serverArgs) = PostgresCluster.AsServiceUser(cluster.PostgresExecutable, cluster.ServerArguments(PortPlaceholder, archiving));

        var healthKey = $"{name}_check";
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            healthKey, _ => new PostgresHealthCheck(server), failureStatus: null, tags: null));

        return builder.AddResource(server)
            .WithEndpoint(name: LocalPostgresServerResource.EndpointName, scheme: "tcp", port: port, targetPort: port, isProxied: false)
            .WithArgs(context =>
            {
                context.Args.Add("-c");
                context.Args.Add(Supervisor);
                context.Args.Add("clippybot-postgres");
                context.Args.Add(fileName);
                foreach (var arg in serverArgs)
                {
                    context.Args.Add(arg == PortPlaceholder ? server.PrimaryEndpoint.Property(EndpointProperty.TargetPort) : arg);
                }
            })
            .WithHealthCheck(healthKey)
            .OnBeforeResourceStarted((resource, _, _) =>
            {
                resource.Cluster.StopStaleServer();
                return Task.CompletedTask;
            })
            .OnResourceReady(async (resource, readyEvent, ct) =>
            {
                var notifications = readyEvent.Services.GetRequiredService<ResourceNotificationService>();
                var superuser = await resource.ConnectionStringExpression.GetValueAsync(ct);
                foreach (var database in resource.Databases)
                {
                    var (ownerPassword, appPassword) = ((await database.OwnerPassword.GetValueAsync(ct))!, (await database.AppPassword.GetValueAsync(ct))!);
                    await DatabaseRoles.EnsureAsync(superuser!, database.DatabaseName, ownerPassword, appPassword, ct);
                    if (resource.MovedFrom is { } previous
                        && await DatabaseMove.MoveIfLeftBehindAsync((await previous.ConnectionStringExpression.GetValueAsync(ct))!, superuser!, database.DatabaseName,
                            resource.Cluster.BinDirectory, ct))
                    {
                        // The restored objects belong to the superuser until the roles are applied again.
                        await DatabaseRoles.EnsureAsync(superuser!, database.DatabaseName, ownerPassword, appPassword, ct);
                        LogMoved(readyEvent.Services.GetRequiredService<ResourceLoggerService>().GetLogger(resource), database.DatabaseName, previous.Name);
                    }
                    // Nothing else runs a database resource, so it says itself when it exists; health checks take over from here.
                    await notifications.PublishUpdateAsync(database, s => s with
                    {
                        State = KnownResourceStates.Running,
                        StartTimeStamp = DateTime.UtcNow,
                    });
                }
            });
    }

    public static IResourceBuilder<LocalPostgresDatabaseResource> AddDatabase(
        this IResourceBuilder<LocalPostgresServerResource> server, string name, string? databaseName = null)
    {
        ArgumentNullException.ThrowIfNull(server);
        var cluster = server.Resource.Cluster;
        var dbName = databaseName ?? name;
        var ownerPassword = server.ApplicationBuilder.AddParameter($"{name}-owner-password", cluster.EnsureRolePassword(DatabaseRoles.Owner(dbName)), secret: true);
        var appPassword = server.ApplicationBuilder.AddParameter($"{name}-app-password", cluster.EnsureRolePassword(DatabaseRoles.App(dbName)), secret: true);
        var database = new LocalPostgresDatabaseResource(name, dbName, server.Resource, ownerPassword.Resource, appPassword.Resource);
        server.Resource.Databases.Add(database);

        var healthKey = $"{name}_check";
        server.ApplicationBuilder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            healthKey, _ => new PostgresHealthCheck(database), failureStatus: null, tags: null));
        return server.ApplicationBuilder.AddResource(database)
            .WithInitialState(new CustomResourceSnapshot
            {
                ResourceType = "PostgresDatabase",
                State = KnownResourceStates.Waiting,
                Properties = [new("DatabaseName", database.DatabaseName)],
            })
            .WithHealthCheck(healthKey);
    }

    /// <summary>Opens a fresh (unpooled) connection, so a stopped server shows as unhealthy at once.</summary>
    private sealed class PostgresHealthCheck(IResourceWithConnectionString resource) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                var connectionString = await resource.ConnectionStringExpression.GetValueAsync(cancellationToken);
                var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, Timeout = 3 };
                await using var connection = new NpgsqlConnection(builder.ConnectionString);
                await connection.OpenAsync(cancellationToken);
                await using var command = new NpgsqlCommand("SELECT 1", connection);
                await command.ExecuteScalarAsync(cancellationToken);
                return HealthCheckResult.Healthy();
            }
#pragma warning disable CA1031 // any failure means "not ready"
            catch (Exception ex)
#pragma warning restore CA1031
            {
                return HealthCheckResult.Unhealthy(ex.GetType().Name);
            }
        }
    }
}
