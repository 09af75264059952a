using System.Globalization;
using ClippyBot.Backup.PointInTime;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// Containers mode's continuous archiving and scheduled backups (docs/backup.md, "Containers mode"): the PostgreSQL
/// container is built from <see cref="Dockerfile"/> (PostgreSQL with pgBackRest), archives every WAL segment into two
/// encrypted repositories configured by its <c>PGBACKREST_*</c> environment, and a sidecar of the same image runs the
/// schedule (full, differential, restore drill) against the shared data, socket and repository volumes. The options are
/// the ones local mode writes to its configuration file (<see cref="PgBackRest.SharedOptions"/>).
/// </summary>
public static class ContainerBackups
{
    /// <summary>Relative to the build context, the repository's root.</summary>
    public const string Dockerfile = "ClippyBot.AppHost/Containers/postgres-pgbackrest/Dockerfile";

    /// <summary>The PostgreSQL 18 image's PGDATA, inside the data volume Aspire mounts at <see cref="DataVolumeTarget"/>.</summary>
    public const string DataDirectory = "/var/lib/postgresql/18/docker";

    public const string DataVolumeTarget = "/var/lib/postgresql";

    public const string SocketDirectory = "/var/run/postgresql";

    /// <summary>Two locations; in production each a bucket in another region (PGBACKREST_REPOn_TYPE=s3 …, docs/backup.md).</summary>
    public const int Repositories = 2;

    /// <summary>
    /// A PostgreSQL container that archives through pgBackRest, and the sidecar <paramref name="scheduleName"/> that backs
    /// it up on <paramref name="cadence"/>, its drills requiring <paramref name="databases"/>. The base images and each repository's passphrase are parameters: a deployment
    /// supplies them (the passphrases are generated and kept when it does not), none is ever on a command line.
    /// </summary>
    public static IResourceBuilder<PostgresServerResource> AddArchivingPostgres(
        this IDistributedApplicationBuilder builder, string name, string scheduleName, BackupCadence cadence, ContainerImages images,
        IReadOnlyList<string> databases)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(cadence);
        ArgumentNullException.ThrowIfNull(images);
        var context = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."));

        List<(string Name, string Value)> settings = [("PGBACKREST_STANZA", PgBackRest.Stanza)];
        List<(string Name, IResourceBuilder<ParameterResource> Value)> secrets = [];
        List<(string Volume, string Target)> volumes =
        [
            ($"clippybot-{name}-data", DataVolumeTarget),
            ($"clippybot-{name}-socket", SocketDirectory),
        ];
        for (var n = 1; n <= Repositories; n++)
        {
            var repository = $"/var/lib/pgbackrest/repo{n}";
            volumes.Add(($"clippybot-{scheduleName}-repo{n}", repository));
            settings.Add((PgBackRest.EnvironmentName($"repo{n}-path"), repository));
            secrets.Add((PgBackRest.EnvironmentName($"repo{n}-cipher-pass"), builder.AddParameter($"{scheduleName}-repo{n}-cipher-pass",
                new GenerateParameterDefault { MinLength = 64, Special = false }, secret: true, persist: true)));
        }
        settings.AddRange(PgBackRest.SharedOptions(Repositories, cadence.RecoveryWindow).Select(o => (PgBackRest.EnvironmentName(o.Option), o.Value)));
        settings.AddRange(
        [
            (PgBackRest.EnvironmentName("pg1-path"), DataDirectory),
            (PgBackRest.EnvironmentName("pg1-socket-path"), SocketDirectory),
            (PgBackRest.EnvironmentName("pg1-port"), "5432"),
            (PgBackRest.EnvironmentName("spool-path"), "/var/spool/pgbackrest"),
        ]);

        var postgres = Configure(builder.AddPostgres(name)
            .WithDockerfile(context, Dockerfile)
            .WithBuildArg("POSTGRES_IMAGE", images.Postgres)
            .WithBuildArg("DOTNET_SDK_IMAGE", images.DotnetSdk)
            .WithArgs([.. PgBackRest.ServerArchiveSettings()]), settings, secrets, volumes);

        static string Seconds(TimeSpan interval) => ((long)interval.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        Configure(builder.AddDockerfile(scheduleName, context, Dockerfile)
            .WithBuildArg("POSTGRES_IMAGE", images.Postgres)
            .WithBuildArg("DOTNET_SDK_IMAGE", images.DotnetSdk)
            .WithEntrypoint("clippybot-backups")
            // The image's initdb makes local connections use scram too: pgBackRest and the drill's psql sign in with it.
            .WithEnvironment("PGPASSWORD", postgres.Resource.PasswordParameter)
            .WithEnvironment("CLIPPYBOT_FULL_INTERVAL_SECONDS", Seconds(cadence.FullBackupInterval))
            .WithEnvironment("CLIPPYBOT_DIFF_INTERVAL_SECONDS", Seconds(cadence.DifferentialBackupInterval))
            .WithEnvironment("CLIPPYBOT_DRILL_INTERVAL_SECONDS", Seconds(cadence.RestoreDrillInterval))
            .WithEnvironment("CLIPPYBOT_DRILL_DATABASES", string.Join(' ', databases))
            .WithVolume($"clippybot-{scheduleName}-state", "/var/lib/clippybot-backups")
            .WaitFor(postgres), settings, secrets, volumes, readOnly: DataVolumeTarget);
        return postgres;
    }

    /// <summary>The base images, named by the deployment (its registry or mirror): parameters, so no registry is written here.</summary>
    public sealed record ContainerImages(IResourceBuilder<ParameterResource> Postgres, IResourceBuilder<ParameterResource> DotnetSdk)
    {
        public static ContainerImages Add(IDistributedApplicationBuilder builder) =>
            new(builder.AddParameter("postgres-image", "postgres:18.3"), builder.AddParameter("dotnet-sdk-image"));
    }

    private static IResourceBuilder<T> Configure<T>(IResourceBuilder<T> container, List<(string Name, string Value)> settings,
        List<(string Name, IResourceBuilder<ParameterResource> Value)> secrets, List<(string Volume, string Target)> volumes, string? readOnly = null)
        where T : ContainerResource
    {
        foreach (var (variable, value) in settings)
        {
            container.WithEnvironment(variable, value);
        }
        foreach (var (variable, value) in secrets)
        {
            container.WithEnvironment(variable, value);
        }
        foreach (var (volume, target) in volumes)
        {
            // The sidecar only reads the data (pgBackRest copies files; the server writes them).
            container.WithVolume(volume, target, isReadOnly: target == readOnly);
        }
        return container;
    }
}
