using System.Text;
using ClippyBot.Plugins.Bundles;
using ClippyBot.PluginHost.Data;
using ClippyBot.PluginHost.Plugins;
using ClippyBot.Plugins.Sandbox;
using ClippyBot.Tests.Rig;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.PluginHost;

/// <summary>
/// Installing, updating and running plugins in the PluginHost against its real database: verification at install and again
/// before loading, no rollback, failed updates change nothing, crash logs, automatic quarantine, the kill switch.
/// </summary>
[TestClass]
public sealed class PluginCatalogTests
{
    internal static readonly (byte[] Private, byte[] Public) Publisher = PluginSigning.GenerateKey();
    private static ServiceFactory<PluginsDbContext> s_host = null!;
    private static readonly HashSet<string> NoGrants = [];
    private static readonly Faults s_faults = new();

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        s_host = await ServiceFactory.WithFreshDatabaseAsync<PluginsDbContext>("pluginsdb", new Dictionary<string, string?>
        {
            ["Encryption:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
            ["Plugins:TrustedKeys:0:Name"] = "first-party",
            ["Plugins:TrustedKeys:0:PublicKey"] = Convert.ToBase64String(Publisher.Public),
            ["Plugins:TrustedKeys:0:Plugins:0"] = "*",
            ["Quarantine:FailuresThreshold"] = "3",
            ["Sandbox:Fuel"] = "5000000",
        }, services => services.ConfigureDbContext<PluginsDbContext>(o => o.AddInterceptors(s_faults.Commits, s_faults.Reads)), context.CancellationToken);
        using var probe = s_host.CreateClient();
        await Poll.UntilAsync(async () => (await probe.GetAsync(new Uri("/health", UriKind.Relative), context.CancellationToken)).IsSuccessStatusCode,
            TimeSpan.FromSeconds(60), "pluginhost healthy", context.CancellationToken);
    }

    [ClassCleanup]
    public static async Task StopAsync() => await s_host.DisposeAsync();

    internal const string Echo = "(i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $n)))";

    internal static byte[] Bundle(string id, string version, string body = Echo, string imports = "", string permissions = "[]", byte[]? key = null)
    {
        var wasm = Wasmtime.Module.ConvertText($$"""
            (module {{imports}}
              (memory (export "memory") 1)
              (global $heap (mut i32) (i32.const 1024))
              (func (export "alloc") (param $n i32) (result i32)
                (local $q i32) (local.set $q (global.get $heap))
                (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $q))
              (func (export "on_message") (param $p i32) (param $n i32) (result i64) {{body}}))
            """);
        var manifest = $$"""
            { "id": "{{id}}", "name": "T", "version": "{{version}}", "publisher": "ClippyBot", "description": "",
              "entryPoints": [{ "event": "on_message", "export": "on_message" }], "permissions": {{permissions}} }
            """;
        var bundle = new PluginBundle(Encoding.UTF8.GetBytes(manifest), wasm, []);
        bundle = bundle.WithSignature(PluginSigning.Sign(bundle, key ?? Publisher.Private, DateTimeOffset.UtcNow));
        using var stream = new MemoryStream();
        bundle.Write(stream);
        return stream.ToArray();
    }

    private async Task<VerifiedBundle> InstallAsync(byte[] bundle)
    {
        await using var scope = s_host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<PluginCatalog>().InstallAsync(new MemoryStream(bundle), Ct);
    }

    /// <summary>Builds the counter example from source, signs it as the first-party publisher and installs it (once per class).</summary>
    private async Task InstallCounterExampleAsync()
    {
        var (wasm, manifest) = await ExamplePlugins.BuildAsync("counter", Ct);
        var bundle = new PluginBundle(manifest, wasm, []);
        bundle = bundle.WithSignature(PluginSigning.Sign(bundle, Publisher.Private, DateTimeOffset.UtcNow));
        using var stream = new MemoryStream();
        bundle.Write(stream);
        try
        {
            await InstallAsync(stream.ToArray());
        }
        catch (BundleException e) when (e.Message.Contains("not newer", StringComparison.Ordinal))
        {
            // Another test of this class installed it already.
        }
    }

    private async Task<InvocationResult> InvokeAsync(string id, Guid workspace, string input = "{\"x\":1}", IReadOnlySet<string>? grants = null)
    {
        await using var scope = s_host.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<PluginInvoker>().InvokeAsync(id, workspace, "on_message", Encoding.UTF8.GetBytes(input), grants ?? NoGrants, Ct);
    }

    private static async Task<T> WithDbAsync<T>(Func<PluginsDbContext, Task<T>> query)
    {
        await using var scope = s_host.Services.CreateAsyncScope();
        return await query(scope.ServiceProvider.GetRequiredService<PluginsDbContext>());
    }

    private static string NewId() => "dev.test.p" + Guid.NewGuid().ToString("N")[..8];

    [TestMethod]
    public async Task An_installed_plugin_runs_and_updates_only_move_forward()
    {
        var id = NewId();
        Assert.AreEqual("1.0.0", (await InstallAsync(Bundle(id, "1.0.0"))).Manifest.Version);
        Assert.AreEqual(InvocationOutcome.Completed, (await InvokeAsync(id, Guid.NewGuid())).Outcome);

        await InstallAsync(Bundle(id, "1.1.0"));
        foreach (var older in new[] { "1.1.0", "1.0.5", "1.1.0-rc.1" })
        {
            var refused = await Assert.ThrowsAsync<BundleException>(() => InstallAsync(Bundle(id, older)));
            Assert.AreEqual(BundleError.NotNewer, refused.Error, older);
        }
        Assert.AreEqual("1.1.0", await WithDbAsync(db => db.InstalledPlugins.Where(p => p.PluginId == id && p.Current).Select(p => p.Version).SingleAsync(Ct)));
    }

    [TestMethod]
    public async Task A_failed_update_leaves_the_old_version_running()
    {
        var id = NewId();
        await InstallAsync(Bundle(id, "1.0.0"));
        var (stranger, _) = PluginSigning.GenerateKey();
        Assert.AreEqual(BundleError.UnknownKey, (await Assert.ThrowsAsync<BundleException>(() => InstallAsync(Bundle(id, "2.0.0", key: stranger)))).Error);
        await Assert.ThrowsAsync<PluginRejectedException>(() => InstallAsync(Bundle(id, "2.0.0", imports: "(import \"clippybot\" \"send_message\" (func (param i32 i32) (result i32)))")));
        Assert.AreEqual("1.0.0", await WithDbAsync(db => db.InstalledPlugins.Where(p => p.PluginId == id && p.Current).Select(p => p.Version).SingleAsync(Ct)));
        Assert.AreEqual(InvocationOutcome.Completed, (await InvokeAsync(id, Guid.NewGuid())).Outcome);
    }

    [TestMethod]
    public async Task A_module_changed_in_storage_is_refused_before_it_is_loaded()
    {
        var id = NewId();
        await InstallAsync(Bundle(id, "1.0.0"));
        await WithDbAsync(db => db.Database.ExecuteSqlAsync($"UPDATE \"InstalledPlugins\" SET \"Wasm\" = overlay(\"Wasm\" placing '\\xff'::bytea from 40) WHERE \"PluginId\" = {id}", Ct));
        await using var scope = s_host.Services.CreateAsyncScope();
        var error = await Assert.ThrowsAsync<BundleException>(() => scope.ServiceProvider.GetRequiredService<PluginCatalog>().LoadAsync(id, Ct));
        Assert.AreEqual(BundleError.Tampered, error.Error);
    }

    [TestMethod]
    public async Task A_caller_who_aborts_right_after_each_trap_cannot_skip_the_crash_log_or_the_quarantine()
    {
        var id = NewId();
        await InstallAsync(Bundle(id, "1.0.0", body: "unreachable"));
        var workspace = Guid.NewGuid();
        // The caller hangs up the moment the sandbox has answered: the invocation's metric is the first thing after it.
        CancellationTokenSource? caller = null;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == PluginMetrics.MeterName && instrument.Name == "clippybot.plugins.invocations")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, _, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "plugin" && (string?)tag.Value == id)
                {
                    caller?.Cancel();
                }
            }
        });
        listener.Start();
        for (var i = 0; i < 3; i++)
        {
            using var aborting = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            caller = aborting;
            await using var scope = s_host.Services.CreateAsyncScope();
            try
            {
                await scope.ServiceProvider.GetRequiredService<PluginInvoker>().InvokeAsync(id, workspace, "on_message", Encoding.UTF8.GetBytes("{}"), NoGrants, aborting.Token);
            }
            catch (OperationCanceledException)
            {
                // What the aborted caller sees does not matter; what was recorded does.
            }
            Assert.IsTrue(aborting.IsCancellationRequested, "the caller hung up after the sandbox answered");
        }
        caller = null;
        Assert.AreEqual(3, await WithDbAsync(db => db.CrashLog.CountAsync(c => c.PluginId == id, Ct)), "every trap is in the crash log");
        Assert.AreEqual("quarantined", (await InvokeAsync(id, workspace)).Kind, "three traps quarantine the version in that workspace");
    }

    [TestMethod]
    public async Task Traps_are_crash_logged_without_the_input_and_repeated_failures_quarantine_the_version()
    {
        var id = NewId();
        await InstallAsync(Bundle(id, "1.0.0", body: "unreachable"));
        var workspace = Guid.NewGuid();
        for (var i = 0; i < 3; i++)
        {
            var result = await InvokeAsync(id, workspace, input: "{\"secret\":\"do-not-log-me\"}");
            Assert.AreEqual(InvocationOutcome.Trapped, result.Outcome);
        }
        var crashes = await WithDbAsync(db => db.CrashLog.Where(c => c.PluginId == id).ToListAsync(Ct));
        Assert.HasCount(3, crashes);
        Assert.IsTrue(crashes.All(c => c.Kind == "unreachable" && c.InputBytes > 0 && c.InputSha256.Length == 64 && c.Backtrace is not null));

        // One tenant's failures quarantine the version in that tenant's workspace only: another workspace still runs it.
        var refusedHere = await InvokeAsync(id, workspace);
        Assert.AreEqual("quarantined", refusedHere.Kind);
        Assert.AreEqual(InvocationOutcome.Trapped, (await InvokeAsync(id, Guid.NewGuid())).Outcome, "another tenant is not affected");

        // Failures from enough distinct workspaces (3 with the threshold reached) quarantine it platform-wide.
        await InvokeAsync(id, Guid.NewGuid());
        var refused = await InvokeAsync(id, Guid.NewGuid());
        Assert.AreEqual(InvocationOutcome.Refused, refused.Outcome);
        Assert.AreEqual("quarantined", refused.Kind, "platform-wide: every workspace");
        var quarantines = await WithDbAsync(db => db.Quarantines.Where(q => q.PluginId == id).ToListAsync(Ct));
        Assert.IsTrue(quarantines.All(q => q.SetBy == "rule:failure-rate"));
        Assert.AreEqual(1, quarantines.Count(q => q.WorkspaceId == workspace));
        Assert.AreEqual(1, quarantines.Count(q => q.WorkspaceId is null));

        await using (var scope = s_host.Services.CreateAsyncScope())
        {
            Assert.AreEqual(2, await scope.ServiceProvider.GetRequiredService<PluginInvoker>().ReleaseAsync(id, "1.0.0", "admin-1", Ct));
        }

        // Retention: entries older than 30 days go; these are fresh and stay.
        await WithDbAsync(db => db.CrashLog.Where(c => c.PluginId == id).OrderBy(c => c.Id).Take(1)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.At, c => c.At.AddDays(-31)), Ct));
        Assert.IsGreaterThanOrEqualTo(1, await s_host.Services.GetRequiredService<CrashLogRetention>().PruneAsync(Ct));
        Assert.AreEqual(4, await WithDbAsync(db => db.CrashLog.CountAsync(c => c.PluginId == id, Ct)));
        Assert.AreEqual(InvocationOutcome.Trapped, (await InvokeAsync(id, workspace)).Outcome, "released: it runs (and traps) again");
    }

    [TestMethod]
    public async Task A_permission_violation_quarantines_the_version_in_that_workspace_only()
    {
        var id = NewId();
        await InstallAsync(Bundle(id, "1.0.0", body: "(drop (call $send (local.get $p) (local.get $n))) " + Echo,
            imports: "(import \"clippybot\" \"send_message\" (func $send (param i32 i32) (result i32)))", permissions: """[{ "name": "messages:send" }]"""));
        var stingy = Guid.NewGuid();
        var generous = Guid.NewGuid();
        Assert.AreEqual("permission_not_granted:messages:send", (await InvokeAsync(id, stingy)).Kind);
        Assert.AreEqual("quarantined", (await InvokeAsync(id, stingy, grants: new HashSet<string> { "messages:send" })).Kind);
        var elsewhere = await InvokeAsync(id, generous, grants: new HashSet<string> { "messages:send" });
        Assert.AreEqual(InvocationOutcome.Completed, elsewhere.Outcome, elsewhere.Kind);
        Assert.AreEqual("rule:permission-violation", await WithDbAsync(db => db.Quarantines.Where(q => q.PluginId == id).Select(q => q.SetBy).SingleAsync(Ct)));
    }

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task The_counter_example_built_from_AssemblyScript_counts_per_workspace_in_its_own_storage()
    {
        await InstallCounterExampleAsync();

        var grants = new HashSet<string> { "storage:kv" };
        var first = Guid.NewGuid();
        var second = Guid.NewGuid();
        for (var expected = 1; expected <= 3; expected++)
        {
            var result = await InvokeAsync("dev.clippybot.counter", first, grants: grants);
            Assert.AreEqual(InvocationOutcome.Completed, result.Outcome, result.Kind);
            Assert.AreEqual($"{{\"count\":{expected}}}", Encoding.UTF8.GetString(result.Output));
        }
        var other = await InvokeAsync("dev.clippybot.counter", second, grants: grants);
        Assert.AreEqual("{\"count\":1}", Encoding.UTF8.GetString(other.Output), "each workspace has its own storage");
        var refused = await InvokeAsync("dev.clippybot.counter", Guid.NewGuid());
        Assert.AreEqual("permission_not_granted:storage:kv", refused.Kind);
    }

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task A_commit_that_fails_once_retries_only_the_storage_write_and_the_plugin_runs_once()
    {
        await InstallCounterExampleAsync();
        var workspace = Guid.NewGuid();
        var grants = new HashSet<string> { "storage:kv" };

        s_faults.Arm();
        var result = await InvokeAsync("dev.clippybot.counter", workspace, grants: grants);
        Assert.AreEqual(InvocationOutcome.Completed, result.Outcome, result.Kind);
        Assert.AreEqual(1, s_faults.FailedCommits, "the injected failure happened");
        // The plugin's storage is read right before it runs, in the same step: one read is one run.
        Assert.AreEqual(1, s_faults.StorageReads, "the plugin ran once for the one event");
        Assert.AreEqual("{\"count\":2}", Encoding.UTF8.GetString((await InvokeAsync("dev.clippybot.counter", workspace, grants: grants)).Output),
            "the first run's write was retried and kept");
    }

    /// <summary>Fails the next commit once (a transient error) and counts reads of plugin storage while armed.</summary>
    private sealed class Faults
    {
        private int _armed;

        public int FailedCommits { get; private set; }

        public int StorageReads { get; private set; }

        public void Arm()
        {
            FailedCommits = 0;
            StorageReads = 0;
            Volatile.Write(ref _armed, 1);
        }

        public Microsoft.EntityFrameworkCore.Diagnostics.IInterceptor Commits => new CommitFault(this);

        public Microsoft.EntityFrameworkCore.Diagnostics.IInterceptor Reads => new StorageReadCounter(this);

        private sealed class CommitFault(Faults faults) : Microsoft.EntityFrameworkCore.Diagnostics.DbTransactionInterceptor
        {
            public override ValueTask<Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult> TransactionCommittingAsync(System.Data.Common.DbTransaction transaction,
                Microsoft.EntityFrameworkCore.Diagnostics.TransactionEventData eventData, Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult result, CancellationToken cancellationToken = default)
            {
                if (Interlocked.Exchange(ref faults._armed, 2) == 1)
                {
                    faults.FailedCommits++;
                    throw new Npgsql.NpgsqlException("injected transient failure", new TimeoutException());
                }
                return base.TransactionCommittingAsync(transaction, eventData, result, cancellationToken);
            }
        }

        private sealed class StorageReadCounter(Faults faults) : Microsoft.EntityFrameworkCore.Diagnostics.DbCommandInterceptor
        {
            public override ValueTask<Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<System.Data.Common.DbDataReader>> ReaderExecutingAsync(System.Data.Common.DbCommand command,
                Microsoft.EntityFrameworkCore.Diagnostics.CommandEventData eventData, Microsoft.EntityFrameworkCore.Diagnostics.InterceptionResult<System.Data.Common.DbDataReader> result, CancellationToken cancellationToken = default)
            {
                if (Volatile.Read(ref faults._armed) != 0 && command.CommandText.Contains("FROM \"PluginKv\"", StringComparison.Ordinal)
                    && command.CommandText.TrimStart().StartsWith("SELECT", StringComparison.OrdinalIgnoreCase))
                {
                    faults.StorageReads++;
                }
                return base.ReaderExecutingAsync(command, eventData, result, cancellationToken);
            }
        }
    }

    private const string FetchImport = "(import \"clippybot\" \"http_fetch\" (func $fetch (param i32 i32 i32 i32) (result i32)))";

    /// <summary>Sends its input (a fetch request) to http_fetch and answers with what came back (an error code here: no
    /// test host resolves). Each test builds its own module (the salt), so no other test's compilation is cached for it.</summary>
    private static string FetchBody => $$"""
        (local $len i32)
        (drop (i32.const {{s_salt.Value}}))
        (local.set $len (call $fetch (local.get $p) (local.get $n) (i32.const 32768) (i32.const 16384)))
        (i64.or (i64.shl (i64.const 32768) (i64.const 32)) (i64.extend_i32_u (local.get $len)))
        """;

    private static readonly AsyncLocal<int> s_salt = new();

    private static string FetchHosts(string host) => $$"""[{ "name": "http:fetch", "parameters": { "hosts": ["{{host}}"] } }]""";

    private async Task<string> FetchErrorAsync(string id, string url, string? version = null)
    {
        await using var scope = s_host.Services.CreateAsyncScope();
        var result = await scope.ServiceProvider.GetRequiredService<PluginInvoker>().InvokeAsync(id, Guid.NewGuid(), "on_message",
            Encoding.UTF8.GetBytes($$"""{"method":"GET","url":"{{url}}"}"""), new HashSet<string> { "http:fetch" }, Ct, version: version);
        Assert.AreEqual(InvocationOutcome.Completed, result.Outcome, result.Kind);
        return System.Text.Json.JsonDocument.Parse(result.Output).RootElement.GetProperty("error").GetString()!;
    }

    [TestMethod]
    public async Task The_same_wasm_in_a_new_version_runs_under_the_new_manifest_not_the_one_it_was_first_compiled_with()
    {
        s_salt.Value = System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue);
        var id = NewId();
        await InstallAsync(Bundle(id, "1.0.0", FetchBody, FetchImport, FetchHosts("old.invalid")));
        Assert.AreNotEqual("host_not_allowed", await FetchErrorAsync(id, "https://old.invalid/"), "1.0.0 may try old.invalid");
        await InstallAsync(Bundle(id, "1.1.0", FetchBody, FetchImport, FetchHosts("new.invalid")));
        Assert.AreEqual("host_not_allowed", await FetchErrorAsync(id, "https://old.invalid/"), "1.1.0 narrowed its hosts: old.invalid is refused");
        Assert.AreNotEqual("host_not_allowed", await FetchErrorAsync(id, "https://new.invalid/"));
        Assert.AreNotEqual("host_not_allowed", await FetchErrorAsync(id, "https://old.invalid/", version: "1.0.0"),
            "a workspace pinned to 1.0.0 runs it under 1.0.0's own manifest");
    }

    [TestMethod]
    public async Task The_same_wasm_under_another_plugin_id_never_lends_that_plugin_its_manifest()
    {
        s_salt.Value = System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue);
        var (first, second) = (NewId(), NewId());
        await InstallAsync(Bundle(first, "1.0.0", FetchBody, FetchImport, FetchHosts("wide.invalid")));
        await InstallAsync(Bundle(second, "1.0.0", FetchBody, FetchImport, FetchHosts("narrow.invalid")));
        Assert.AreEqual("host_not_allowed", await FetchErrorAsync(second, "https://wide.invalid/"), "the second plugin's own hosts apply");
        Assert.AreEqual("host_not_allowed", await FetchErrorAsync(first, "https://narrow.invalid/"), "and the first keeps its own");
    }

    [TestMethod]
    public async Task A_cached_module_is_checked_against_every_new_manifest()
    {
        s_salt.Value = System.Security.Cryptography.RandomNumberGenerator.GetInt32(int.MaxValue);
        var id = NewId();
        await InstallAsync(Bundle(id, "1.0.0", FetchBody, FetchImport, FetchHosts("a.invalid")));
        var refused = await Assert.ThrowsAsync<PluginRejectedException>(() => InstallAsync(Bundle(id, "1.0.1", FetchBody, FetchImport, "[]")));
        StringAssert.Contains(refused.Message, "http:fetch");
        Assert.AreEqual("1.0.0", await WithDbAsync(db => db.InstalledPlugins.Where(p => p.PluginId == id && p.Current).Select(p => p.Version).SingleAsync(Ct)));
    }

    [TestMethod]
    public async Task The_kill_switch_stops_every_version_until_released()
    {
        var id = NewId();
        await InstallAsync(Bundle(id, "1.0.0"));
        await using (var scope = s_host.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<PluginInvoker>().QuarantineAsync(id, "*", null, "incident 42", "admin-7", Ct);
        }
        Assert.AreEqual("quarantined", (await InvokeAsync(id, Guid.NewGuid())).Kind);
        await InstallAsync(Bundle(id, "1.0.1"));
        Assert.AreEqual("quarantined", (await InvokeAsync(id, Guid.NewGuid())).Kind, "a new version does not escape a * quarantine");
        await using (var scope = s_host.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<PluginInvoker>().ReleaseAsync(id, "*", "admin-7", Ct);
        }
        Assert.AreEqual(InvocationOutcome.Completed, (await InvokeAsync(id, Guid.NewGuid())).Outcome);
        var entry = await WithDbAsync(db => db.Quarantines.SingleAsync(q => q.PluginId == id, Ct));
        Assert.AreEqual("admin-7", entry.ReleasedBy);
    }
}
