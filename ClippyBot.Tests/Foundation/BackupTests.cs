using System.Security.Cryptography;
using ClippyBot.Backup;
using ClippyBot.Tests.Rig;
using Npgsql;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// "Restoration is tested": data is backed up into an encrypted archive and restored into a fresh cluster, identical. A
/// wrong key, a damaged or cut archive, or an occupied target fails with a clear message before anything is written.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class BackupTests
{
    private static TestPostgres s_target = null!;
    private static string s_workspace = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        s_target = await TestPostgres.StartAsync(context.CancellationToken);
        s_workspace = Directory.CreateTempSubdirectory("clippybot-backup-test-").FullName;
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        await s_target.DisposeAsync();
        Directory.Delete(s_workspace, recursive: true);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_backup_restores_into_a_fresh_cluster_identical_and_verifies()
    {
        var (first, second) = await SeedAsync();
        var key = NewKeyFile();
        var archive = Path.Combine(s_workspace, Guid.NewGuid() + ".cbbk");

        var (code, output, error) = await RunAsync("backup", "--server", TestRig.Postgres.ServerConnectionString, "--database", first, "--database", second, "--out", archive, "--key-file", key);
        Assert.AreEqual(0, code, error);
        StringAssert.Contains(output, "Backed up 2 database(s)");
        Assert.IsFalse(File.Exists(archive + ".partial"));
        var bytes = await File.ReadAllBytesAsync(archive, Ct);
        Assert.IsLessThan(0, bytes.AsSpan().IndexOf("restore-me"u8), "the archive holds no plaintext");

        (code, output, error) = await RunAsync("verify", "--archive", archive, "--key-file", key);
        Assert.AreEqual(0, code, error);

        (code, output, error) = await RunAsync("restore", "--archive", archive, "--server", s_target.ServerConnectionString, "--key-file", key);
        Assert.AreEqual(0, code, error);
        Assert.AreEqual(await FingerprintAsync(TestRig.Postgres, first), await FingerprintAsync(s_target, first));
        Assert.AreEqual(await FingerprintAsync(TestRig.Postgres, second), await FingerprintAsync(s_target, second));

        (code, _, error) = await RunAsync("restore", "--archive", archive, "--server", s_target.ServerConnectionString, "--key-file", key);
        Assert.AreEqual(1, code);
        StringAssert.Contains(error, "already exists on the target server");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_wrong_key_a_damaged_or_a_cut_archive_fails_clearly_and_writes_nothing()
    {
        var (first, _) = await SeedAsync();
        var key = NewKeyFile();
        var archive = Path.Combine(s_workspace, Guid.NewGuid() + ".cbbk");
        Assert.AreEqual(0, (await RunAsync("backup", "--server", TestRig.Postgres.ServerConnectionString, "--database", first, "--out", archive, "--key-file", key)).Code);
        var databasesBefore = await DatabasesAsync(s_target);

        var (code, _, error) = await RunAsync("restore", "--archive", archive, "--server", s_target.ServerConnectionString, "--key-file", NewKeyFile());
        Assert.AreEqual(1, code);
        StringAssert.Contains(error, "does not open with this key, or it is damaged");

        var bytes = await File.ReadAllBytesAsync(archive, Ct);
        var damaged = Path.Combine(s_workspace, Guid.NewGuid() + ".cbbk");
        bytes[bytes.Length / 2] ^= 0x01;
        await File.WriteAllBytesAsync(damaged, bytes, Ct);
        (code, _, error) = await RunAsync("restore", "--archive", damaged, "--server", s_target.ServerConnectionString, "--key-file", key);
        Assert.AreEqual(1, code);
        StringAssert.Contains(error, "Nothing was restored");

        var cut = Path.Combine(s_workspace, Guid.NewGuid() + ".cbbk");
        await File.WriteAllBytesAsync(cut, (await File.ReadAllBytesAsync(archive, Ct))[..^100], Ct);
        (code, _, error) = await RunAsync("restore", "--archive", cut, "--server", s_target.ServerConnectionString, "--key-file", key);
        Assert.AreEqual(1, code);
        StringAssert.Contains(error, "Nothing was restored");

        CollectionAssert.AreEquivalent(databasesBefore, await DatabasesAsync(s_target), "the target cluster is untouched");
    }

    [TestMethod]
    public async Task Bad_usage_and_a_weak_key_get_clear_messages()
    {
        Assert.AreEqual(2, (await RunAsync()).Code);
        var (code, _, error) = await RunAsync("backup", "--server", "x");
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "--database");
        var weak = Path.Combine(s_workspace, "weak.key");
        await File.WriteAllTextAsync(weak, "short", Ct);
        (code, _, error) = await RunAsync("verify", "--archive", "nothing.cbbk", "--key-file", weak);
        Assert.AreEqual(1, code);
        StringAssert.Contains(error, "at least 43 characters");
    }

    private async Task<(string First, string Second)> SeedAsync()
    {
        var first = await TestRig.Postgres.CreateDatabaseAsync("bk", Ct);
        var second = await TestRig.Postgres.CreateDatabaseAsync("bk", Ct);
        foreach (var connection in new[] { first, second })
        {
            await using var db = new NpgsqlConnection(connection);
            await db.OpenAsync(Ct);
            await using var seed = new NpgsqlCommand("""
                CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, payload bytea NOT NULL, at timestamptz NOT NULL);
                INSERT INTO items SELECT i, 'restore-me ' || i, sha256(i::text::bytea), now() - i * interval '1 minute' FROM generate_series(1, 2000) i;
                CREATE INDEX items_name ON items (name);
                """, db);
            await seed.ExecuteNonQueryAsync(Ct);
        }
        return (new NpgsqlConnectionStringBuilder(first).Database!, new NpgsqlConnectionStringBuilder(second).Database!);
    }

    private async Task<string> FingerprintAsync(TestPostgres server, string database)
    {
        await using var db = new NpgsqlConnection(server.DatabaseConnectionString(database));
        await db.OpenAsync(Ct);
        await using var query = new NpgsqlCommand("""
            SELECT count(*) || ':' || md5(string_agg(id || name || encode(payload, 'hex') || at::text, ',' ORDER BY id))
                   || ':' || (SELECT count(*) FROM pg_indexes WHERE tablename = 'items') FROM items
            """, db);
        return (string)(await query.ExecuteScalarAsync(Ct))!;
    }

    private async Task<List<string>> DatabasesAsync(TestPostgres server)
    {
        await using var db = new NpgsqlConnection(server.DatabaseConnectionString("postgres"));
        await db.OpenAsync(Ct);
        await using var query = new NpgsqlCommand("SELECT datname FROM pg_database", db);
        var names = new List<string>();
        await using var reader = await query.ExecuteReaderAsync(Ct);
        while (await reader.ReadAsync(Ct))
        {
            names.Add(reader.GetString(0));
        }
        return names;
    }

    private static string NewKeyFile()
    {
        var path = Path.Combine(s_workspace, Guid.NewGuid() + ".key");
        File.WriteAllText(path, Convert.ToBase64String(RandomNumberGenerator.GetBytes(48)));
        return path;
    }

    private async Task<(int Code, string Output, string Error)> RunAsync(params string[] args)
    {
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await BackupCli.RunAsync(args, output, error, Ct);
        return (code, output.ToString(), error.ToString());
    }
}
