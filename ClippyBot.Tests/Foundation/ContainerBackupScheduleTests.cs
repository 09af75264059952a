using System.Diagnostics;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Backup.PointInTime;
using ClippyBot.Tests.Rig;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// Containers mode's backup schedule (the <c>backups</c> sidecar's <c>clippybot-backups</c>, docs/backup.md) run here
/// against a real archiving cluster, configured only by the <c>PGBACKREST_*</c> environment the AppHost gives the
/// containers: it backs up what is due into each repository, runs a drill with the real tool, stays quiet when nothing is
/// due, and says ERROR with exit 1 when a repository cannot be written. (The container image itself needs a container
/// engine, which this machine kind lacks.)
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class ContainerBackupScheduleTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(600_000, CooperativeCancellation = true)]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task The_sidecar_schedule_backs_up_what_is_due_into_each_repository_drills_and_fails_loudly_on_a_broken_repository()
    {
        var ct = TestContext.CancellationToken;
        await using var archiving = await ArchivingPostgres.StartAsync(ct);
        var ledger = await archiving.Live.CreateDatabaseAsync("ledger", ct);
        var ledgerName = new Npgsql.NpgsqlConnectionStringBuilder(ledger).Database!;
        await using (var connection = new Npgsql.NpgsqlConnection(ledger))
        {
            await connection.OpenAsync(ct);
            await using var command = new Npgsql.NpgsqlCommand("""
                CREATE TABLE "__EFMigrationsHistory" ("MigrationId" varchar(150) PRIMARY KEY, "ProductVersion" varchar(32) NOT NULL);
                INSERT INTO "__EFMigrationsHistory" VALUES ('20261204000000_Ledger', '10.0.0');
                """, connection);
            await command.ExecuteNonQueryAsync(ct);
        }
        var scratch = Directory.CreateTempSubdirectory("clippybot-sidecar-").FullName;
        // As the image's /etc/pgbackrest: pgBackRest, run as postgres, reaches the configuration written there.
        File.SetUnixFileMode(scratch, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        var environment = SidecarEnvironment(archiving, scratch, ledgerName);

        // Full backups are a week old at most (the class's own); differentials are due now, and so is a drill.
        environment["CLIPPYBOT_FULL_INTERVAL_SECONDS"] = "3600";
        environment["CLIPPYBOT_DIFF_INTERVAL_SECONDS"] = "0";
        environment["CLIPPYBOT_DRILL_INTERVAL_SECONDS"] = "0";
        var (code, output, error) = await RunOnceAsync(environment, ct);
        Assert.AreEqual(0, code, output + error);
        StringAssert.Contains(output, "backup: diff into repository 1");
        StringAssert.Contains(output, "backup: diff into repository 2");
        StringAssert.Contains(output, "drill passed: repository 1");
        var info = await archiving.PgBackRest.InfoAsync(ct);
        Assert.AreEqual(1, info.Count(b => b.Repository == 1 && b.Type == "diff"));
        Assert.AreEqual(1, info.Count(b => b.Repository == 2 && b.Type == "diff"));
        // The drill tool's configuration: written from the environment, root's, readable by the postgres group only.
        var config = Path.Combine(scratch, "pgbackrest.conf");
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(config));
        StringAssert.Contains(File.ReadAllText(config), "repo2-cipher-type=aes-256-cbc");

        // Nothing due: no backup and no drill, and it says nothing.
        environment["CLIPPYBOT_DIFF_INTERVAL_SECONDS"] = "3600";
        environment["CLIPPYBOT_DRILL_INTERVAL_SECONDS"] = "3600";
        (code, output, error) = await RunOnceAsync(environment, ct);
        Assert.AreEqual(0, code, error);
        Assert.AreEqual("", output.Trim());
        Assert.AreEqual(2, (await archiving.PgBackRest.InfoAsync(ct)).Count(b => b.Type == "diff"));

        // A value with a line break would add options to that file: refused before anything runs.
        environment["PGBACKREST_REPO1_RETENTION_FULL"] = "30\nrepo1-path=/tmp/elsewhere";
        (code, _, error) = await RunOnceAsync(environment, ct);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "line break");
        environment["PGBACKREST_REPO1_RETENTION_FULL"] = "30";

        // The second repository's passphrase is wrong (a secret rotated in one place only): an ERROR line and exit 1.
        environment["CLIPPYBOT_DIFF_INTERVAL_SECONDS"] = "0";
        environment[PgBackRest.EnvironmentName("repo2-cipher-pass")] = "not-the-passphrase";
        (code, output, error) = await RunOnceAsync(environment, ct);
        Assert.AreEqual(1, code, output);
        StringAssert.Contains(error, "ERROR");
        Directory.Delete(scratch, recursive: true);
    }

    /// <summary>What <see cref="ContainerBackups"/> gives the sidecar, with this cluster's paths in place of the container's.</summary>
    private static Dictionary<string, string> SidecarEnvironment(ArchivingPostgres archiving, string scratch, string database)
    {
        var passphrases = File.ReadAllLines(Path.Combine(archiving.Root, "cipher-pass")).Where(l => l.Length > 0).ToList();
        var environment = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["PGBACKREST_STANZA"] = PgBackRest.Stanza,
            [PgBackRest.EnvironmentName("pg1-path")] = archiving.Live.Cluster.DataDirectory,
            [PgBackRest.EnvironmentName("pg1-socket-path")] = archiving.Live.Cluster.SocketDirectory,
            [PgBackRest.EnvironmentName("pg1-port")] = archiving.Live.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            [PgBackRest.EnvironmentName("pg1-user")] = ServiceUser.Name,
            [PgBackRest.EnvironmentName("spool-path")] = Path.Combine(archiving.Root, "spool"),
            [PgBackRest.EnvironmentName("lock-path")] = Path.Combine(archiving.Root, "lock"),
            [PgBackRest.EnvironmentName("log-path")] = Path.Combine(archiving.Root, "log"),
            ["CLIPPYBOT_PGBACKREST_CONFIG"] = Path.Combine(scratch, "pgbackrest.conf"),
            ["CLIPPYBOT_STATE_DIRECTORY"] = Path.Combine(scratch, "state"),
            ["CLIPPYBOT_BACKUP_TOOL"] = Path.Combine(AppContext.BaseDirectory, "clippybot-backup"),
            ["CLIPPYBOT_DRILL_DATABASES"] = database,
        };
        for (var n = 1; n <= archiving.Repositories.Length; n++)
        {
            environment[PgBackRest.EnvironmentName($"repo{n}-path")] = archiving.Repositories[n - 1];
            environment[PgBackRest.EnvironmentName($"repo{n}-cipher-pass")] = passphrases[n - 1];
        }
        foreach (var (option, value) in PgBackRest.SharedOptions(archiving.Repositories.Length, TimeSpan.FromDays(30)))
        {
            environment[PgBackRest.EnvironmentName(option)] = value;
        }
        return environment;
    }

    private static async Task<(int Code, string Output, string Error)> RunOnceAsync(Dictionary<string, string> environment, CancellationToken ct)
    {
        var start = new ProcessStartInfo("bash", [Path.Combine(Repository.Root, "ClippyBot.AppHost", "Containers", "postgres-pgbackrest", "clippybot-backups"), "once"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var inherited in start.Environment.Keys.Where(k => k.StartsWith("PGBACKREST_", StringComparison.Ordinal)).ToList())
        {
            start.Environment.Remove(inherited);
        }
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return (process.ExitCode, await output, await error);
    }
}
