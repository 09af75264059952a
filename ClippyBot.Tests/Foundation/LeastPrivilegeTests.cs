using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Tests.Rig;
using Microsoft.EntityFrameworkCore;
using Npgsql;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// Per-service PostgreSQL roles on a real cluster, made exactly as the AppHost makes them (<see cref="DatabaseRoles"/>):
/// each service's runtime role reaches only its own database, reads and writes rows, and can change nothing about the
/// schema — not a table, not a trigger, not replication settings that would skip triggers.
/// </summary>
[TestClass]
public sealed class LeastPrivilegeTests
{
    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    private sealed record Database(string Name, string OwnerConnection, string AppConnection);

    private async Task<Database> NewDatabaseAsync(string service)
    {
        var name = $"lp_{service}_{Guid.NewGuid():N}"[..24];
        var (ownerPassword, appPassword) = (System.Security.Cryptography.RandomNumberGenerator.GetHexString(40), System.Security.Cryptography.RandomNumberGenerator.GetHexString(40));
        await DatabaseRoles.EnsureAsync(TestRig.Postgres.ServerConnectionString, name, ownerPassword, appPassword, Ct);
        var server = TestRig.Postgres.DatabaseConnectionString(name);
        return new(name, DatabaseRoles.As(server, DatabaseRoles.Owner(name), ownerPassword) + ";Pooling=false",
            DatabaseRoles.As(server, DatabaseRoles.App(name), appPassword) + ";Pooling=false");
    }

    private async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private async Task AssertRefusedAsync(string connectionString, string sql, string why)
    {
        var refused = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(connectionString, sql), why);
        Assert.AreEqual(PostgresErrorCodes.InsufficientPrivilege, refused.SqlState, $"{why}: {refused.MessageText}");
    }

    private static string OtherDatabase(string connectionString, string database) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Database = database }.ConnectionString;

    [TestMethod]
    public async Task Each_services_runtime_role_reaches_only_its_own_database_and_cannot_change_its_schema()
    {
        var plugins = await NewDatabaseAsync("plugins");
        var api = await NewDatabaseAsync("api");
        var identity = await NewDatabaseAsync("identity");
        try
        {
            // Migrations run as the owner role, as the AppHost's migrators do.
            await using (var db = new ClippyBot.PluginHost.Data.PluginsDbContext(new DbContextOptionsBuilder<ClippyBot.PluginHost.Data.PluginsDbContext>().UseNpgsql(plugins.OwnerConnection).Options))
            {
                await db.Database.MigrateAsync(Ct);
            }
            await using (var db = new ClippyBot.Api.Data.ApiDbContext(new DbContextOptionsBuilder<ClippyBot.Api.Data.ApiDbContext>().UseNpgsql(api.OwnerConnection).Options))
            {
                await db.Database.MigrateAsync(Ct);
            }
            await ExecuteAsync(identity.OwnerConnection, "CREATE TABLE \"AspNetUsers\" (\"Id\" uuid PRIMARY KEY, \"PasswordHash\" text)");

            // Rows: yes.
            await ExecuteAsync(plugins.AppConnection, "DELETE FROM \"CrashLog\" WHERE false");
            await ExecuteAsync(api.AppConnection, "SELECT count(*) FROM \"AuditEntries\"");

            // Another service's database: not even a connection, for the runtime role or the owner.
            foreach (var (connectionString, who) in new[] { (plugins.AppConnection, "the PluginHost's runtime role"), (plugins.OwnerConnection, "the PluginHost's owner role"), (api.AppConnection, "the Api's runtime role") })
            {
                await AssertRefusedAsync(OtherDatabase(connectionString, identity.Name), "SELECT 1", $"{who} connecting to identitydb");
            }

            // The schema: no DDL, no trigger switched off or dropped, no replica mode that skips triggers.
            await AssertRefusedAsync(plugins.AppConnection, "ALTER TABLE \"CrashLog\" DISABLE TRIGGER ALL", "disable triggers on its own table");
            await AssertRefusedAsync(plugins.AppConnection, "CREATE TABLE stash (id int)", "create a table");
            await AssertRefusedAsync(api.AppConnection, "DROP TRIGGER audit_entries_append_only ON \"AuditEntries\"", "drop the audit table's trigger");
            await AssertRefusedAsync(api.AppConnection, "ALTER TABLE \"AuditEntries\" DISABLE TRIGGER audit_entries_append_only", "disable the audit table's trigger");
            await AssertRefusedAsync(api.AppConnection, "SET session_replication_role = replica", "skip triggers by replication role");
            await AssertRefusedAsync(api.AppConnection, "TRUNCATE \"AuditEntries\"", "truncate the audit table");

            await using var check = new NpgsqlConnection(TestRig.Postgres.ServerConnectionString);
            await check.OpenAsync(Ct);
            await using var roles = new NpgsqlCommand(
                $"SELECT count(*) FROM pg_roles WHERE rolname LIKE 'lp\\_%' AND rolname IN ('{DatabaseRoles.Owner(api.Name)}', '{DatabaseRoles.App(api.Name)}') AND (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls)", check);
            Assert.AreEqual(0L, (long)(await roles.ExecuteScalarAsync(Ct))!, "neither role may create databases or roles, replicate or bypass row security");
        }
        finally
        {
            foreach (var database in new[] { plugins, api, identity })
            {
                await ExecuteAsync(TestRig.Postgres.ServerConnectionString,
                    $"DROP DATABASE IF EXISTS {database.Name} WITH (FORCE); DROP ROLE IF EXISTS {DatabaseRoles.App(database.Name)}; DROP ROLE IF EXISTS {DatabaseRoles.Owner(database.Name)}");
            }
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Each_services_redis_user_reaches_only_its_own_keys_and_channels()
    {
        var redisServer = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(d => Path.Combine(d, "redis-server")).FirstOrDefault(File.Exists);
        Assert.IsNotNull(redisServer, "redis-server is installed (.ci/run installs it): the ACL users need it (Garnet has no key patterns)");
        var folder = Directory.CreateTempSubdirectory("clippybot-redis-acl-").FullName;
        var passwords = new[] { RedisUsers.Admin }.Concat(RedisUsers.Rules.Keys).ToDictionary(u => u, _ => System.Security.Cryptography.RandomNumberGenerator.GetHexString(40, lowercase: true));
        var config = Path.Combine(folder, "redis.conf");
        await File.WriteAllTextAsync(config, "save \"\"\nappendonly no\n" + RedisUsers.Acl(passwords), Ct);
        var port = LocalInfrastructureOptions.FreePort();
        using var server = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(redisServer, [config, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1"])
        {
            RedirectStandardOutput = true, UseShellExecute = false,
        })!;
        try
        {
            async Task<StackExchange.Redis.IDatabase> AsAsync(string user)
            {
                StackExchange.Redis.ConnectionMultiplexer? connection = null;
                await Poll.UntilAsync(async () =>
                {
                    try
                    {
                        connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{port},user={user},password={passwords[user]},abortConnect=true");
                        return true;
                    }
                    catch (StackExchange.Redis.RedisConnectionException)
                    {
                        return false;
                    }
                }, TimeSpan.FromSeconds(10), $"redis-server answering {user}", Ct);
                return connection!.GetDatabase();
            }
            static async Task AssertNoPermAsync(Func<Task> action, string what)
            {
                var refused = await Assert.ThrowsAsync<StackExchange.Redis.RedisServerException>(action, what);
                StringAssert.StartsWith(refused.Message, "NOPERM", $"{what}: {refused.Message}");
            }
            var identity = await AsAsync("identity");
            var api = await AsAsync("api");
            var pluginhost = await AsAsync("pluginhost");
            const string marker = "clippybot:revoked-before:someone";

            Assert.IsTrue(await identity.StringSetAsync(marker, 1), "Identity writes markers");
            await identity.PublishAsync(StackExchange.Redis.RedisChannel.Literal("clippybot:revocations"), "x");
            Assert.AreEqual("1", (string?)await api.StringGetAsync(marker), "the Api reads them");
            await AssertNoPermAsync(() => api.KeyDeleteAsync(marker), "the Api deleting a marker");
            await AssertNoPermAsync(() => api.StringSetAsync(marker, 0), "the Api lowering a marker (only Identity writes them)");
            Assert.IsTrue(await api.StringSetAsync("clippybot:rl:global:x", 1), "the Api writes its own rate-limit keys");

            Assert.IsTrue(await pluginhost.StringSetAsync("clippybot:pluginhost:x", 1), "the PluginHost writes its own keys");
            await AssertNoPermAsync(() => pluginhost.KeyDeleteAsync(marker), "the PluginHost deleting a revocation marker");
            await AssertNoPermAsync(() => pluginhost.StringGetAsync(marker), "the PluginHost reading a revocation marker");
            await AssertNoPermAsync(() => pluginhost.PublishAsync(StackExchange.Redis.RedisChannel.Literal("clippybot:revocations"), "forged"), "the PluginHost publishing on the revocation channel");
            await AssertNoPermAsync(() => pluginhost.StringSetAsync("clippybot:login-attempts:victim:1", 0), "the PluginHost forging throttle state");
            await AssertNoPermAsync(() => identity.StringSetAsync("clippybot:rl:global:x", 0), "Identity writing the Api's rate limits");
            await AssertNoPermAsync(() => pluginhost.ExecuteAsync("SCAN", "0"), "the PluginHost listing every key name");
            foreach (var (database, user) in new[] { (identity, "identity"), (api, "api"), (pluginhost, "pluginhost") })
            {
                await AssertNoPermAsync(() => database.ExecuteAsync("FLUSHALL"), $"{user} flushing everything");
                await AssertNoPermAsync(() => database.ExecuteAsync("CONFIG", "GET", "*"), $"{user} reading the server's configuration");
            }
        }
        finally
        {
            server.Kill();
            await server.WaitForExitAsync(CancellationToken.None);
            Directory.Delete(folder, recursive: true);
        }
    }
}
