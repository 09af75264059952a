using ClippyBot.Backup;
using ClippyBot.Backup.PointInTime;
using ClippyBot.Tests.Rig;
using Npgsql;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// "Point-in-time recovery for the last 30 days, multiple locations, restoration tested": a real cluster archiving its WAL
/// through pgBackRest into two encrypted repositories; restores to a noted moment from each; drills; a damaged repository.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class PointInTimeRecoveryTests
{
    private static ArchivingPostgres s_archiving = null!;
    private static TestPostgres s_live = null!;
    private static PgBackRest s_pgBackRest = null!;
    private static string[] s_repositories = null!;
    private static string s_ledger = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        var archiving = await ArchivingPostgres.StartAsync(context.CancellationToken);
        (s_live, s_pgBackRest, s_repositories) = (archiving.Live, archiving.PgBackRest, archiving.Repositories);
        s_archiving = archiving;
        s_ledger = await s_live.CreateDatabaseAsync("ledger", context.CancellationToken);
        await ExecuteAsync("CREATE TABLE entries (id bigserial PRIMARY KEY, note text NOT NULL)", context.CancellationToken);
        // As the Api's database has it: a restored audit chain must still link (the drill checks).
        await ExecuteAsync("""
            CREATE TABLE "AuditEntries" ("Id" bigserial PRIMARY KEY, "ChainId" uuid NOT NULL, "PreviousHash" bytea NOT NULL, "Hash" bytea NOT NULL);
            INSERT INTO "AuditEntries" ("ChainId", "PreviousHash", "Hash") VALUES
                ('00000000-0000-0000-0000-000000000001', decode(repeat('00', 32), 'hex'), '\x01'),
                ('00000000-0000-0000-0000-000000000001', '\x01', '\x02'),
                ('00000000-0000-0000-0000-000000000002', decode(repeat('00', 32), 'hex'), '\x03');
            """, context.CancellationToken);
        // As a service's database has it: the drill checks that a restored database holds its schema migrations.
        await ExecuteAsync("""
            CREATE TABLE "__EFMigrationsHistory" ("MigrationId" varchar(150) PRIMARY KEY, "ProductVersion" varchar(32) NOT NULL);
            INSERT INTO "__EFMigrationsHistory" VALUES ('20261203000000_Ledger', '10.0.0');
            """, context.CancellationToken);
    }

    [ClassCleanup]
    public static async Task StopAsync() => await s_archiving.DisposeAsync();

    [TestMethod]
    [Timeout(600_000, CooperativeCancellation = true)]
    public async Task A_restore_to_a_noted_moment_from_either_repository_holds_exactly_the_rows_written_before_it_and_drills_catch_a_damaged_repository()
    {
        // A moment to recover to lies after a backup's end, which pgBackRest records to the second.
        await s_archiving.WaitPastNewestBackupAsync(s_ledger, Ct);
        await ExecuteAsync("INSERT INTO entries (note) VALUES ('before-1'), ('before-2')", Ct);
        var noted = await ScalarAsync<DateTime>("SELECT clock_timestamp()", Ct);
        await ExecuteAsync("INSERT INTO entries (note) VALUES ('after-1')", Ct);
        // Closes the current WAL segment and waits until both repositories have it.
        await s_pgBackRest.EnsureStanzaAsync(Ct);
        var ledger = new NpgsqlConnectionStringBuilder(s_ledger).Database!;

        // Repository 1 through the library, repository 2 through the operator's command.
        var into1 = Path.Combine(s_live.Cluster.DataRoot, "restored-1");
        // The live cluster keeps archiving asynchronously through its spool while a restore runs beside it: the restore
        // must leave that spool alone (pgBackRest empties it when the restore runs asynchronously, racing the live pushes).
        var liveSpool = Path.Combine(s_archiving.Root, "spool", "archive", PgBackRest.Stanza, "out");
        Assert.IsTrue(Directory.Exists(liveSpool), "the live cluster pushes its WAL through the spool");
        var acknowledgement = Path.Combine(liveSpool, "live-cluster-marker.ok");
        File.WriteAllText(acknowledgement, "");
        await s_pgBackRest.RestoreAsync(into1, 1, new DateTimeOffset(noted, TimeSpan.Zero), Ct);
        Assert.IsTrue(File.Exists(acknowledgement), "a restore beside the live cluster left the live cluster's spool alone");
        File.Delete(acknowledgement);
        await using (var restored = await RestoredCluster.StartAsync(into1, Ct))
        {
            Assert.AreEqual("before-1,before-2", await restored.QueryAsync(ledger, "SELECT string_agg(note, ',' ORDER BY id) FROM entries", Ct));
        }
        var into2 = Path.Combine(s_live.Cluster.DataRoot, "restored-2");
        var (code, output, error) = await RunAsync("pitr", "--config", s_pgBackRest.ConfigFile, "--repo", "2",
            "--target-time", PgBackRest.FormatTarget(new DateTimeOffset(noted, TimeSpan.Zero)), "--into", into2);
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, ledger);
        await using (var restored = await RestoredCluster.StartAsync(into2, Ct))
        {
            Assert.AreEqual("before-1,before-2", await restored.QueryAsync(ledger, "SELECT string_agg(note, ',' ORDER BY id) FROM entries", Ct));
        }

        // A drill restores the newest backup and every archived segment: the later row is there, and it says so in one line.
        (code, output, error) = await RunAsync("drill", "--config", s_pgBackRest.ConfigFile, "--repo", "1", "--database", ledger);
        Assert.AreEqual(0, code, error);
        StringAssert.StartsWith(output, "drill passed: repository 1");
        StringAssert.Contains(output, "(RTO)");
        StringAssert.Contains(output, "row counts of 3 tables within the window of the live ones");

        // Rows the live database holds that no backup does (here an unlogged table; the same as a stalled archive) fail
        // the drill, naming the table and both counts.
        await ExecuteAsync("CREATE UNLOGGED TABLE scratch (id int); INSERT INTO scratch SELECT generate_series(1, 500)", Ct);
        await s_pgBackRest.EnsureStanzaAsync(Ct);
        (code, _, error) = await RunAsync("drill", "--config", s_pgBackRest.ConfigFile, "--repo", "1", "--database", ledger);
        Assert.AreEqual(1, code, error);
        StringAssert.Contains(error, "scratch: 0 restored, 500 live");
        // An operator drilling while the live cluster is down says so; the restore itself is still proven.
        (code, output, error) = await RunAsync("drill", "--config", s_pgBackRest.ConfigFile, "--repo", "1", "--database", ledger, "--compare-live", "no");
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "row counts not compared with the live cluster");
        await ExecuteAsync("DROP TABLE scratch", Ct);
        await s_pgBackRest.EnsureStanzaAsync(Ct);

        // An audit entry whose link does not hold (as after a cut) fails the drill, saying so.
        await ExecuteAsync("""UPDATE "AuditEntries" SET "PreviousHash" = '\x09' WHERE "Hash" = '\x02'""", Ct);
        await s_pgBackRest.EnsureStanzaAsync(Ct);
        (code, _, error) = await RunAsync("drill", "--config", s_pgBackRest.ConfigFile, "--repo", "1", "--database", ledger);
        Assert.AreEqual(1, code);
        StringAssert.Contains(error, "1 audit entries whose link to the previous entry does not hold");
        await ExecuteAsync("""UPDATE "AuditEntries" SET "PreviousHash" = '\x01' WHERE "Hash" = '\x02'""", Ct);
        await s_pgBackRest.EnsureStanzaAsync(Ct);

        // The archived WAL of repository 1 is lost: its drill fails with a clear line and a non-zero exit; repository 2 still restores.
        Directory.Delete(Path.Combine(s_repositories[0], "archive"), recursive: true);
        (code, output, error) = await RunAsync("drill", "--config", s_pgBackRest.ConfigFile, "--repo", "1", "--database", ledger);
        Assert.AreEqual(1, code, output);
        // pgBackRest no longer lists the backups of a repository whose archive is gone; had it, the restore would not start.
        StringAssert.Matches(error, new System.Text.RegularExpressions.Regex("^clippybot-backup: (Repository 1 holds no backup|The restored cluster .* did not start)"));
        (code, output, error) = await RunAsync("drill", "--config", s_pgBackRest.ConfigFile, "--repo", "2", "--database", ledger);
        Assert.AreEqual(0, code, error);
        StringAssert.StartsWith(output, "drill passed: repository 2");
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Operator_commands_refuse_a_time_without_its_zone_an_occupied_folder_and_a_missing_configuration()
    {
        var (code, _, error) = await RunAsync("pitr", "--config", s_pgBackRest.ConfigFile, "--target-time", "2026-12-03 11:20:00", "--into", "/tmp/x");
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "with its zone");
        var occupied = Directory.CreateTempSubdirectory("clippybot-pitr-occupied-").FullName;
        File.WriteAllText(Path.Combine(occupied, "keep"), "mine");
        (code, _, error) = await RunAsync("pitr", "--config", s_pgBackRest.ConfigFile, "--target-time", "2026-12-03 11:20:00+00", "--into", occupied);
        Assert.AreEqual(1, code);
        StringAssert.Contains(error, "is not empty");
        Assert.AreEqual("mine", File.ReadAllText(Path.Combine(occupied, "keep")), "nothing was written into it");
        Directory.Delete(occupied, recursive: true);
        // A link planted where the restored server's socket folder goes is not followed (chmod would hand its target over).
        var parent = Directory.CreateTempSubdirectory("clippybot-pitr-link-").FullName;
        var victim = Directory.CreateDirectory(Path.Combine(parent, "victim")).FullName;
        File.SetUnixFileMode(victim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        Directory.CreateSymbolicLink(Path.Combine(parent, "restored.socket"), victim);
        (code, _, error) = await RunAsync("pitr", "--config", s_pgBackRest.ConfigFile, "--target-time", "2099-01-01 00:00:00+00", "--into", Path.Combine(parent, "restored"));
        Assert.AreEqual(1, code);
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute,
            File.GetUnixFileMode(victim), "the link's target keeps its mode");
        // Nor one planted where the restore's own spool goes (pgBackRest empties that spool).
        File.WriteAllText(Path.Combine(victim, "keep"), "mine");
        Directory.CreateSymbolicLink(Path.Combine(parent, "other.spool"), victim);
        (code, _, error) = await RunAsync("pitr", "--config", s_pgBackRest.ConfigFile, "--target-time", "2099-01-01 00:00:00+00", "--into", Path.Combine(parent, "other"));
        Assert.AreEqual(1, code);
        StringAssert.Contains(error, "other.spool");
        Assert.AreEqual("mine", File.ReadAllText(Path.Combine(victim, "keep")));
        Directory.Delete(parent, recursive: true);
        (code, _, error) = await RunAsync("drill", "--config", "/nonexistent/pgbackrest.conf");
        Assert.AreEqual(1, code);
        StringAssert.Contains(error, "No pgBackRest configuration");
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void The_repositories_are_encrypted_with_a_passphrase_that_is_never_on_a_command_line()
    {
        var config = File.ReadAllText(s_pgBackRest.ConfigFile);
        StringAssert.Contains(config, "repo1-cipher-type=aes-256-cbc");
        StringAssert.Contains(config, "repo2-cipher-type=aes-256-cbc");
        StringAssert.Contains(config, "repo1-retention-full-type=time");
        Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(s_pgBackRest.ConfigFile));
        Assert.IsFalse(s_pgBackRest.ArchiveSettings(s_live.Cluster.SocketDirectory).Any(a => a.Contains("cipher", StringComparison.Ordinal)));
        // What lands in a repository is ciphertext: the backup's manifest is not readable text.
        var manifest = Directory.GetFiles(Path.Combine(s_repositories[1], "backup"), "backup.manifest", SearchOption.AllDirectories).First();
        Assert.IsFalse(File.ReadAllText(manifest).Contains("[backup]", StringComparison.Ordinal), "the manifest is encrypted");
    }

    private static async Task ExecuteAsync(string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(s_ledger);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<T> ScalarAsync<T>(string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(s_ledger);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(ct))!;
    }

    private async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await BackupCli.RunAsync(args, output, error, Ct);
        return (code, output.ToString(), error.ToString());
    }
}
