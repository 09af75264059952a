using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Tests.Rig;
using Npgsql;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// <c>subjectkeysdb</c> moved to a cluster of its own (its backups must age out within 30 days). A checkout whose main
/// cluster still holds it gets it moved once — rows intact, the runtime role able to use them — and the old copy dropped,
/// since a copy left behind would outlive that limit in the main cluster's backups.
/// </summary>
[TestClass]
public sealed class DatabaseMoveTests
{
    private static readonly string OwnerPassword = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(20));
    private static readonly string AppPassword = Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(20));

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_database_left_in_the_old_cluster_is_moved_once_with_its_rows_and_dropped_there()
    {
        var ct = TestContext.CancellationToken;
        await using var keysCluster = await TestPostgres.StartAsync(ct);
        var old = TestRig.Postgres;
        var name = new NpgsqlConnectionStringBuilder(await old.CreateDatabaseAsync("keysmove", ct)).Database!;
        await ExecuteAsync(old.DatabaseConnectionString(name), """
            CREATE TABLE "SubjectKeys" ("Subject" text PRIMARY KEY, "WrappedKey" bytea);
            INSERT INTO "SubjectKeys" SELECT 'subject-' || g, decode(md5(g::text), 'hex') FROM generate_series(1, 250) g;
            INSERT INTO "SubjectKeys" VALUES ('erased', NULL);
            """, ct);

        // As the AppHost does: the roles and an empty database in the new cluster, then the move, then the roles again.
        await DatabaseRoles.EnsureAsync(keysCluster.ServerConnectionString, name, OwnerPassword, AppPassword, ct);
        Assert.IsTrue(await DatabaseMove.MoveIfLeftBehindAsync(old.ServerConnectionString, keysCluster.ServerConnectionString, name, keysCluster.Cluster.BinDirectory, ct));
        await DatabaseRoles.EnsureAsync(keysCluster.ServerConnectionString, name, OwnerPassword, AppPassword, ct);

        var app = DatabaseRoles.As(keysCluster.DatabaseConnectionString(name), DatabaseRoles.App(name), AppPassword);
        Assert.AreEqual(251L, await ScalarAsync(app, """SELECT count(*) FROM "SubjectKeys" """, ct));
        Assert.AreEqual(1L, await ScalarAsync(app, """SELECT count(*) FROM "SubjectKeys" WHERE "WrappedKey" IS NULL""", ct), "the tombstone came along");
        Assert.AreEqual(DatabaseRoles.Owner(name), await ScalarAsync<string>(keysCluster.DatabaseConnectionString(name),
            """SELECT tableowner FROM pg_tables WHERE tablename = 'SubjectKeys'""", ct), "the migrator's role owns what was restored");
        Assert.AreEqual(0L, await ScalarAsync(old.ServerConnectionString, $"SELECT count(*) FROM pg_database WHERE datname = '{name}'", ct), "no copy left behind");

        // Once only: a later start finds it at home and changes nothing.
        Assert.IsFalse(await DatabaseMove.MoveIfLeftBehindAsync(old.ServerConnectionString, keysCluster.ServerConnectionString, name, keysCluster.Cluster.BinDirectory, ct));
        Assert.AreEqual(251L, await ScalarAsync(app, """SELECT count(*) FROM "SubjectKeys" """, ct));
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task An_old_copy_that_turns_up_again_beside_the_moved_database_is_dropped_when_it_holds_nothing_more()
    {
        // A crash between the comparison and the drop, or a point-in-time restore of the main cluster to before the move.
        var (keysCluster, old, name) = await BothCopiesAsync("keysstale", oldRows: ["a"], newRows: ["a", "b"]);
        await using (keysCluster)
        {
            Assert.IsFalse(await DatabaseMove.MoveIfLeftBehindAsync(old.ServerConnectionString, keysCluster.ServerConnectionString, name, keysCluster.Cluster.BinDirectory, Ct));
            Assert.AreEqual("a,b", await ScalarAsync<string>(keysCluster.DatabaseConnectionString(name), """SELECT string_agg("Subject", ',' ORDER BY 1) FROM "SubjectKeys" """, Ct));
            Assert.AreEqual(0L, await ScalarAsync(old.ServerConnectionString, $"SELECT count(*) FROM pg_database WHERE datname = '{name}'", Ct), "the stale copy is gone");
        }
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task An_old_copy_holding_rows_the_new_home_lacks_is_refused_loudly_and_neither_is_changed()
    {
        var (keysCluster, old, name) = await BothCopiesAsync("keysboth", oldRows: ["a", "b", "c"], newRows: ["z"]);
        await using (keysCluster)
        {
            var refused = await Assert.ThrowsExactlyAsync<InvalidOperationException>(() =>
                DatabaseMove.MoveIfLeftBehindAsync(old.ServerConnectionString, keysCluster.ServerConnectionString, name, keysCluster.Cluster.BinDirectory, Ct));
            StringAssert.Contains(refused.Message, "SubjectKeys");
            Assert.AreEqual("z", await ScalarAsync<string>(keysCluster.DatabaseConnectionString(name), """SELECT string_agg("Subject", ',') FROM "SubjectKeys" """, Ct));
            Assert.AreEqual("a,b,c", await ScalarAsync<string>(old.DatabaseConnectionString(name), """SELECT string_agg("Subject", ',' ORDER BY 1) FROM "SubjectKeys" """, Ct));
        }
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task A_restore_that_fails_part_way_leaves_the_new_home_empty_and_the_next_start_moves_again()
    {
        var ct = TestContext.CancellationToken;
        await using var keysCluster = await TestPostgres.StartAsync(ct);
        var old = TestRig.Postgres;
        var name = new NpgsqlConnectionStringBuilder(await old.CreateDatabaseAsync("keyspart", ct)).Database!;
        // pg_restore creates the table first, then the sequence — which clashes with one already in the new home.
        await ExecuteAsync(old.DatabaseConnectionString(name), """
            CREATE TABLE "SubjectKeys" ("Subject" text PRIMARY KEY); INSERT INTO "SubjectKeys" VALUES ('a'), ('b');
            CREATE SEQUENCE zz_clash;
            """, ct);
        await DatabaseRoles.EnsureAsync(keysCluster.ServerConnectionString, name, OwnerPassword, AppPassword, ct);
        await ExecuteAsync(keysCluster.DatabaseConnectionString(name), "CREATE SEQUENCE zz_clash", ct);

        await Assert.ThrowsAsync<Exception>(() => DatabaseMove.MoveIfLeftBehindAsync(old.ServerConnectionString, keysCluster.ServerConnectionString, name, keysCluster.Cluster.BinDirectory, ct));
        Assert.AreEqual(0L, await ScalarAsync(keysCluster.DatabaseConnectionString(name), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", ct),
            "nothing half-restored is left to be mistaken for a finished move");
        Assert.AreEqual(1L, await ScalarAsync(old.ServerConnectionString, $"SELECT count(*) FROM pg_database WHERE datname = '{name}'", ct), "the old copy is kept");

        await ExecuteAsync(keysCluster.DatabaseConnectionString(name), "DROP SEQUENCE zz_clash", ct);
        Assert.IsTrue(await DatabaseMove.MoveIfLeftBehindAsync(old.ServerConnectionString, keysCluster.ServerConnectionString, name, keysCluster.Cluster.BinDirectory, ct));
        Assert.AreEqual(2L, await ScalarAsync(keysCluster.DatabaseConnectionString(name), """SELECT count(*) FROM "SubjectKeys" """, ct));
    }

    private CancellationToken Ct => TestContext.CancellationToken;

    private async Task<(TestPostgres KeysCluster, TestPostgres Old, string Name)> BothCopiesAsync(string prefix, string[] oldRows, string[] newRows)
    {
        var keysCluster = await TestPostgres.StartAsync(Ct);
        var old = TestRig.Postgres;
        var name = new NpgsqlConnectionStringBuilder(await old.CreateDatabaseAsync(prefix, Ct)).Database!;
        static string Values(string[] rows) => string.Join(", ", rows.Select(r => $"('{r}')"));
        await ExecuteAsync(old.DatabaseConnectionString(name), $"""CREATE TABLE "SubjectKeys" ("Subject" text PRIMARY KEY); INSERT INTO "SubjectKeys" VALUES {Values(oldRows)}""", Ct);
        await DatabaseRoles.EnsureAsync(keysCluster.ServerConnectionString, name, OwnerPassword, AppPassword, Ct);
        await ExecuteAsync(keysCluster.DatabaseConnectionString(name), $"""CREATE TABLE "SubjectKeys" ("Subject" text PRIMARY KEY); INSERT INTO "SubjectKeys" VALUES {Values(newRows)}""", Ct);
        return (keysCluster, old, name);
    }

    private static async Task ExecuteAsync(string connectionString, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static Task<long> ScalarAsync(string connectionString, string sql, CancellationToken ct) => ScalarAsync<long>(connectionString, sql, ct);

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(ct))!;
    }
}
