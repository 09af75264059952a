using System.Text;
using System.Text.Json;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Plugins.Sandbox;
using Microsoft.Extensions.Options;
using Wasmtime;

namespace ClippyBot.Tests.PluginHost;

/// <summary>
/// The hostile-plugin suite against the real Wasmtime sandbox: each attack ends with its own specific outcome, nothing
/// leaks between invocations, and a well-behaved plugin running concurrently keeps working.
/// </summary>
[TestClass]
public sealed class SandboxTests
{
    private static PluginRuntime s_runtime = null!;
    private static readonly HashSet<string> NoGrants = [];

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void Start(TestContext context) => s_runtime = new PluginRuntime(Options.Create(new SandboxOptions
    {
        Fuel = 20_000_000,
        Timeout = TimeSpan.FromSeconds(2),
        MaxMemoryBytes = 8L * 1024 * 1024,
        MaxOutputBytes = 64 * 1024,
        MaxHostCalls = 50,
        MaxModuleBytes = 1024 * 1024,
    }));

    [ClassCleanup]
    public static void Stop() => s_runtime.Dispose();

    /// <summary>A plugin: bump allocator, memory, and an <c>on_message</c> whose body is <paramref name="body"/>.</summary>
    private static byte[] Plugin(string body, string imports = "", string extra = "") => Module.ConvertText($$"""
        (module
          {{imports}}
          (memory (export "memory") 1)
          (global $heap (mut i32) (i32.const 1024))
          (global $calls (mut i32) (i32.const 0))
          (func (export "alloc") (param $n i32) (result i32)
            (local $p i32)
            (local.set $p (global.get $heap))
            (global.set $heap (i32.add (global.get $heap) (local.get $n)))
            (local.get $p))
          {{extra}}
          (func (export "on_message") (param $p i32) (param $n i32) (result i64)
            {{body}}))
        """);

    private const string Echo = "(i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $n)))";

    private static PluginManifest Manifest(params string[] permissions) => new(
        "dev.clippybot.test", "Test", "1.0.0", "ClippyBot", "", [new EntryPoint("on_message", "on_message")],
        [.. permissions.Select(p => new PermissionRequest(p, p == "http:fetch" ? new Dictionary<string, JsonElement> { ["hosts"] = JsonDocument.Parse("[\"x\"]").RootElement } : null))],
        null);

    private static InvocationResult Run(string body, string imports = "", string extra = "", IReadOnlySet<string>? grants = null, string input = "{\"text\":\"hi\"}", PluginManifest? manifest = null)
    {
        using var plugin = s_runtime.Compile(Plugin(body, imports, extra), manifest ?? Manifest());
        return s_runtime.Invoke(plugin, "on_message", Encoding.UTF8.GetBytes(input), grants ?? NoGrants);
    }

    [TestMethod]
    public void A_well_behaved_plugin_echoes_its_input()
    {
        var result = Run(Echo);
        Assert.AreEqual(InvocationOutcome.Completed, result.Outcome, result.Kind);
        Assert.AreEqual("{\"text\":\"hi\"}", Encoding.UTF8.GetString(result.Output));
        Assert.IsGreaterThan(0L, result.FuelUsed);
    }

    [TestMethod]
    public void An_infinite_loop_runs_out_of_fuel()
    {
        var result = Run("(loop $l (br $l)) (i64.const 0)");
        Assert.AreEqual(InvocationOutcome.LimitHit, result.Outcome);
        Assert.AreEqual("fuel", result.Kind);
    }

    [TestMethod]
    public void A_slow_plugin_hits_the_wall_clock_deadline_even_with_fuel_left()
    {
        using var generous = new PluginRuntime(Options.Create(new SandboxOptions { Fuel = long.MaxValue / 2, Timeout = TimeSpan.FromMilliseconds(100) }));
        using var again = generous.Compile(Plugin("(loop $l (br $l)) (i64.const 0)"), Manifest());
        var result = generous.Invoke(again, "on_message", "{}"u8, NoGrants);
        Assert.AreEqual(InvocationOutcome.LimitHit, result.Outcome);
        Assert.AreEqual("timeout", result.Kind);
        Assert.IsLessThan(TimeSpan.FromSeconds(2), result.Duration);
    }

    [TestMethod]
    public void A_memory_bomb_cannot_grow_past_the_cap()
    {
        var result = Run("(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable");
        Assert.AreEqual(InvocationOutcome.Trapped, result.Outcome);
        Assert.AreEqual("unreachable", result.Kind, "growth failed (returned -1) at the cap, so the plugin gave up");
        Assert.IsLessThanOrEqualTo(8L * 1024 * 1024, result.MemoryBytes);
    }

    [TestMethod]
    public void Deep_recursion_overflows_its_own_stack_only()
    {
        var result = Run("(i64.extend_i32_u (call $down (i32.const 0)))", extra: "(func $down (param i32) (result i32) (call $down (i32.add (local.get 0) (i32.const 1))))");
        Assert.AreEqual(InvocationOutcome.Trapped, result.Outcome);
        Assert.AreEqual("stack_overflow", result.Kind);
        StringAssert.Contains(result.Backtrace ?? "", "@", "a wasm backtrace is kept for the crash log");
    }

    [TestMethod]
    public void Out_of_bounds_access_traps()
    {
        var result = Run("(drop (i32.load (i32.const 0x7ffffff0))) (i64.const 0)");
        Assert.AreEqual(InvocationOutcome.Trapped, result.Outcome);
        Assert.AreEqual("memory_out_of_bounds", result.Kind);
    }

    [TestMethod]
    public void An_output_flood_is_refused()
    {
        var result = Run("(i64.or (i64.shl (i64.const 1024) (i64.const 32)) (i64.const 100000000))");
        Assert.AreEqual(InvocationOutcome.LimitHit, result.Outcome);
        Assert.AreEqual("output_too_large", result.Kind);
    }

    [TestMethod]
    public void A_host_call_flood_hits_the_quota()
    {
        var result = Run("(loop $l (call $log (local.get $p) (local.get $n)) (br $l)) (i64.const 0)",
            imports: "(import \"clippybot\" \"log\" (func $log (param i32 i32)))");
        Assert.AreEqual(InvocationOutcome.LimitHit, result.Outcome);
        Assert.AreEqual("host_calls", result.Kind);
    }

    [TestMethod]
    public void Importing_a_host_function_without_its_permission_fails_at_install_naming_the_permission()
    {
        var wasm = Plugin(Echo, imports: "(import \"clippybot\" \"send_message\" (func $send (param i32 i32) (result i32)))");
        var error = Assert.Throws<PluginRejectedException>(() => s_runtime.Compile(wasm, Manifest()));
        StringAssert.Contains(error.Message, "messages:send");
        var wasi = Plugin(Echo, imports: "(import \"wasi_snapshot_preview1\" \"fd_write\" (func $w (param i32 i32 i32 i32) (result i32)))");
        StringAssert.Contains(Assert.Throws<PluginRejectedException>(() => s_runtime.Compile(wasi, Manifest())).Message, "no WASI");
    }

    [TestMethod]
    public void A_permission_requested_but_not_granted_by_the_workspace_refuses_the_invocation()
    {
        const string imports = "(import \"clippybot\" \"send_message\" (func $send (param i32 i32) (result i32)))";
        const string body = "(drop (call $send (local.get $p) (local.get $n))) " + Echo;
        var refused = Run(body, imports, manifest: Manifest("messages:send"));
        Assert.AreEqual(InvocationOutcome.Refused, refused.Outcome);
        Assert.AreEqual("permission_not_granted:messages:send", refused.Kind);

        var granted = Run(body, imports, grants: new HashSet<string> { "messages:send" }, manifest: Manifest("messages:send"));
        Assert.AreEqual(InvocationOutcome.Completed, granted.Outcome, granted.Kind);
        Assert.AreEqual("{\"text\":\"hi\"}", granted.Messages.Single());
    }

    [TestMethod]
    public void Malformed_and_oversized_modules_are_rejected()
    {
        StringAssert.Contains(Assert.Throws<PluginRejectedException>(() => s_runtime.Compile("\0asm\u0001junk"u8.ToArray(), Manifest())).Message, "not valid WebAssembly");
        var huge = new byte[2 * 1024 * 1024];
        StringAssert.Contains(Assert.Throws<PluginRejectedException>(() => s_runtime.Compile(huge, Manifest())).Message, "at most");
        StringAssert.Contains(Assert.Throws<PluginRejectedException>(() => s_runtime.Compile(Module.ConvertText("(module)"), Manifest())).Message, "does not export");
    }

    [TestMethod]
    public void Nothing_survives_between_invocations()
    {
        // The output length is a counter the plugin keeps in a global: were the instance reused, it would grow.
        const string body = "(global.set $calls (i32.add (global.get $calls) (i32.const 1))) (i64.extend_i32_u (global.get $calls))";
        using var plugin = s_runtime.Compile(Plugin(body), Manifest());
        for (var i = 0; i < 3; i++)
        {
            var result = s_runtime.Invoke(plugin, "on_message", "{}"u8, NoGrants);
            Assert.AreEqual(InvocationOutcome.Completed, result.Outcome, result.Kind);
            Assert.HasCount(1, result.Output, "a fresh instance every time");
        }
    }

    [TestMethod]
    public async Task A_trap_storm_beside_a_well_behaved_plugin_leaves_the_well_behaved_one_working()
    {
        using var good = s_runtime.Compile(Plugin(Echo), Manifest());
        using var bad = s_runtime.Compile(Plugin("unreachable"), Manifest());
        using var loop = s_runtime.Compile(Plugin("(loop $l (br $l)) (i64.const 0)"), Manifest());
        var hostile = Enumerable.Range(0, 40).Select(i => Task.Run(() => s_runtime.Invoke(i % 2 == 0 ? bad : loop, "on_message", "{}"u8, NoGrants)));
        var friendly = Enumerable.Range(0, 200).Select(_ => Task.Run(() => s_runtime.Invoke(good, "on_message", "{\"x\":1}"u8, NoGrants)));
        var results = await Task.WhenAll(hostile.Concat(friendly));
        Assert.IsTrue(results.Skip(40).All(r => r.Succeeded && Encoding.UTF8.GetString(r.Output) == "{\"x\":1}"));
        Assert.IsTrue(results.Take(40).All(r => !r.Succeeded));
    }
}
