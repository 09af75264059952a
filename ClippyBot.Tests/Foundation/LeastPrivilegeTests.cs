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
        Assert.IsNotNull(redisServer, "redis-server is installed (.ci/run installs it): key-scoped ACL users need it (Garnet has no key patterns)");
        var passwords = CachePasswords();
        await using var server = CacheServer.Start(redisServer, folder => [WriteFile(folder, "redis.conf", "save \"\"\nappendonly no\n" + RedisUsers.Acl(passwords))]);
        var identity = await server.AsAsync("identity", passwords, Ct);
        var api = await server.AsAsync("api", passwords, Ct);
        const string marker = "clippybot:revoked-before:someone";

        Assert.IsTrue(await identity.StringSetAsync(marker, 1), "Identity writes markers");
        await identity.PublishAsync(StackExchange.Redis.RedisChannel.Literal("clippybot:revocations"), "x");
        Assert.AreEqual("1", (string?)await api.StringGetAsync(marker), "the Api reads them");
        await AssertNoPermAsync(() => api.KeyDeleteAsync(marker), "the Api deleting a marker");
        await AssertNoPermAsync(() => api.StringSetAsync(marker, 0), "the Api lowering a marker (only Identity writes them)");
        await AssertNoPermAsync(() => api.StringSetAsync("clippybot:login-attempts:victim:1", 0), "the Api forging Identity's throttle state");
        Assert.IsTrue(await api.StringSetAsync("clippybot:rl:global:x", 1), "the Api writes its own rate-limit keys");
        await AssertNoPermAsync(() => identity.StringSetAsync("clippybot:rl:global:x", 0), "Identity writing the Api's rate limits");
        // The public registry counts its own rate limits and reaches nothing else: no marker, no other limit, no channel.
        var registry = await server.AsAsync("registry", passwords, Ct);
        Assert.AreEqual(1, (long)await registry.StringIncrementAsync("clippybot:registry:rl:ip:x:1"), "the registry counts its own limits");
        await AssertNoPermAsync(() => registry.StringGetAsync(marker), "the registry reading revocation markers");
        await AssertNoPermAsync(() => registry.StringSetAsync("clippybot:rl:global:x", 0), "the registry writing the Api's rate limits");
        await AssertNoPermAsync(() => registry.PublishAsync(StackExchange.Redis.RedisChannel.Literal("clippybot:revocations"), "x"), "the registry announcing revocations");
        await AssertNoPermAsync(() => api.StringSetAsync("clippybot:registry:rl:ip:x:1", 0), "the Api writing the registry's limits");
        await AssertNoPermAsync(() => registry.ExecuteAsync("SCAN", "0"), "the registry listing key names (SCAN ignores key patterns)");
        await AssertNoPermAsync(() => registry.ExecuteAsync("RANDOMKEY"), "the registry sampling key names");
        Assert.IsTrue(await registry.StringSetAsync("clippybot:registry:refusal-recorded:x:1", 1, TimeSpan.FromMinutes(2), StackExchange.Redis.When.NotExists), "records a refusal once");

        // Security signals: each writer counts only its own; the Api, which evaluates the alert rules, reads them all.
        var apphost = await server.AsAsync("apphost", passwords, Ct);
        foreach (var (writer, source) in new[] { (identity, "identity"), (api, "api"), (registry, "registry"), (apphost, "apphost") })
        {
            Assert.AreEqual(1, await writer.HashIncrementAsync($"clippybot:signals:{source}:ratelimit.refused:1", "*"), $"{source} counts its own signals");
            Assert.AreEqual(1, await writer.ListLeftPushAsync($"clippybot:signals:{source}:ratelimit.refused:samples", "1|x|y"), $"{source} keeps its samples");
        }
        Assert.AreEqual(1, (long)await api.HashGetAsync("clippybot:signals:identity:ratelimit.refused:1", "*"), "the Api reads Identity's signals");
        await AssertNoPermAsync(() => identity.HashIncrementAsync("clippybot:signals:api:audit:account.erased:success:1", "*"), "Identity forging the Api's signals");
        await AssertNoPermAsync(() => registry.HashIncrementAsync("clippybot:signals:identity:signin.failed:1", "*"), "the registry forging Identity's signals");
        await AssertNoPermAsync(() => api.HashSetAsync("clippybot:signals:apphost:backup.drill_failed:1", "*", 0), "the Api hiding a failed drill");
        await AssertNoPermAsync(() => apphost.StringGetAsync(marker), "the AppHost's signal user reading markers");
        await AssertNoPermAsync(() => apphost.ExecuteAsync("SCAN", "0"), "the AppHost's signal user listing keys");
        await AssertServiceUsersAreBoundedAsync(server, passwords, identity, api);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task With_garnet_each_service_has_its_own_user_and_none_can_run_dangerous_commands()
    {
        // Exactly as the AppHost runs Garnet when redis-server is not installed: the repository's garnet-server tool.
        var passwords = CachePasswords();
        await using var server = CacheServer.Start("dotnet", folder =>
        {
            var acl = WriteFile(folder, "users.acl", RedisUsers.GarnetAcl(passwords));
            var config = WriteFile(folder, "garnet.conf", System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, string> { ["AuthenticationMode"] = "Acl", ["AclFile"] = acl }));
            return ["tool", "run", "garnet-server", "--", "--config-import-path", config, "--lua", "true", "-q"];
        });
        var identity = await server.AsAsync("identity", passwords, Ct);
        var api = await server.AsAsync("api", passwords, Ct);
        Assert.IsTrue(await identity.StringSetAsync("clippybot:revoked-before:someone", 1), "Identity writes markers");
        Assert.AreEqual(1L, (long)await api.ScriptEvaluateAsync("return redis.call('INCR', KEYS[1])", ["clippybot:rl:global:x"]), "the Api runs its counters' Lua");
        await AssertNoPermAsync(() => api.ExecuteAsync("COMMITAOF"), "an administrative command Garnet does not file as dangerous");
        var fromLua = await Assert.ThrowsAsync<StackExchange.Redis.RedisServerException>(() => api.ScriptEvaluateAsync("return redis.call('FLUSHALL')"), "a dangerous command from inside Lua");
        StringAssert.Contains(fromLua.Message, "NOPERM", fromLua.Message);
        await AssertServiceUsersAreBoundedAsync(server, passwords, identity, api);
    }

    [TestMethod]
    public async Task The_plugin_host_has_no_cache_user_and_no_cache_connection()
    {
        var passwords = CachePasswords();
        foreach (var acl in new[] { RedisUsers.Acl(passwords), RedisUsers.GarnetAcl(passwords) })
        {
            Assert.DoesNotContain("user pluginhost", acl, "the cache has no user for the service that runs third-party code");
        }
        // Started as it runs, the PluginHost has no connection to the cache at all (its announcements go through pluginsdb).
        await using var host = await ServiceFactory.WithFreshDatabaseAsync<ClippyBot.PluginHost.Data.PluginsDbContext>("pluginsdb", new Dictionary<string, string?>
        {
            ["Encryption:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
        }, null, Ct);
        Assert.IsNull(host.Services.GetService(typeof(StackExchange.Redis.IConnectionMultiplexer)), "the PluginHost holds no cache connection");
    }

    /// <summary>What holds for every service user on either server: the default user is off, another service's password
    /// does not open a user, and nobody but the administrator flushes, reads the configuration, lists keys or manages users.</summary>
    private async Task AssertServiceUsersAreBoundedAsync(CacheServer server, Dictionary<string, string> passwords, params StackExchange.Redis.IDatabase[] services)
    {
        await Assert.ThrowsAsync<StackExchange.Redis.RedisConnectionException>(() => StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{server.Port},abortConnect=true,connectTimeout=3000"), "the default user is off");
        await Assert.ThrowsAsync<StackExchange.Redis.RedisConnectionException>(() => StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{server.Port},user=identity,password={passwords["api"]},abortConnect=true,connectTimeout=3000"), "a password opens only its own user");
        foreach (var database in services)
        {
            await AssertNoPermAsync(() => database.ExecuteAsync("FLUSHALL"), "flushing everything");
            await AssertNoPermAsync(() => database.ExecuteAsync("CONFIG", "GET", "*"), "reading the server's configuration (passwords)");
            await AssertNoPermAsync(() => database.ExecuteAsync("KEYS", "*"), "listing every key in one blocking call");
            await AssertNoPermAsync(() => database.ExecuteAsync("ACL", "LIST"), "reading or changing users");
        }
        var admin = await server.AsAsync(RedisUsers.Admin, passwords, Ct);
        Assert.AreEqual("PONG", (await admin.ExecuteAsync("PING")).ToString(), "the AppHost's health check still gets in");
    }

    private static async Task AssertNoPermAsync(Func<Task> action, string what)
    {
        var refused = await Assert.ThrowsAsync<StackExchange.Redis.RedisServerException>(action, what);
        StringAssert.StartsWith(refused.Message, "NOPERM", $"{what}: {refused.Message}");
    }

    private static Dictionary<string, string> CachePasswords() =>
        new[] { RedisUsers.Admin }.Concat(RedisUsers.Rules.Keys).ToDictionary(u => u, _ => System.Security.Cryptography.RandomNumberGenerator.GetHexString(40, lowercase: true));

    private static string WriteFile(string folder, string name, string content)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllText(path, content);
        return path;
    }

    /// <summary>A redis-server or Garnet process on a free loopback port, configured by files in its own temporary folder.</summary>
    private sealed class CacheServer : IAsyncDisposable
    {
        private readonly System.Diagnostics.Process _process;
        private readonly string _folder;
        private readonly List<StackExchange.Redis.ConnectionMultiplexer> _connections = [];

        private CacheServer(System.Diagnostics.Process process, string folder, int port) => (_process, _folder, Port) = (process, folder, port);

        public int Port { get; }

        public static CacheServer Start(string command, Func<string, string[]> arguments)
        {
            var folder = Directory.CreateTempSubdirectory("clippybot-cache-acl-").FullName;
            var port = LocalInfrastructureOptions.FreePort();
            var start = new System.Diagnostics.ProcessStartInfo(command) { WorkingDirectory = Repository.Root, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (var argument in arguments(folder).Concat(["--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--bind", "127.0.0.1"]))
            {
                start.ArgumentList.Add(argument);
            }
            var process = System.Diagnostics.Process.Start(start)!;
            process.OutputDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            return new CacheServer(process, folder, port);
        }

        public async Task<StackExchange.Redis.IDatabase> AsAsync(string user, Dictionary<string, string> passwords, CancellationToken ct)
        {
            StackExchange.Redis.ConnectionMultiplexer? connection = null;
            await Poll.UntilAsync(async () =>
            {
                try
                {
                    connection = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync($"127.0.0.1:{Port},user={user},password={passwords[user]},abortConnect=true");
                    return true;
                }
                catch (StackExchange.Redis.RedisConnectionException)
                {
                    return _process.HasExited ? throw new InvalidOperationException($"the cache server exited with {_process.ExitCode}") : false;
                }
            }, TimeSpan.FromSeconds(60), $"the cache answering {user}", ct);
            _connections.Add(connection!);
            return connection!.GetDatabase();
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var connection in _connections)
            {
                await connection.DisposeAsync();
            }
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(CancellationToken.None);
            _process.Dispose();
            Directory.Delete(_folder, recursive: true);
        }
    }
}
