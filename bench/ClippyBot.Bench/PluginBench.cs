using System.Diagnostics;
using System.Globalization;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Plugins.Sandbox;
using Microsoft.Extensions.Options;

namespace ClippyBot.Bench;

/// <summary>
/// Warm invocation of a trivial (echo) plugin through the real sandbox — fresh store, linker and instance each time, fuel
/// and deadline set, input copied in, output copied out — on one thread; p50/p99/max and compile time.
/// </summary>
internal static class PluginBench
{
    /// <summary>The trivial plugin both plugin benches run: it answers with its input.</summary>
    public static readonly byte[] EchoWasm = Wasmtime.Module.ConvertText("""
        (module
          (memory (export "memory") 1)
          (global $heap (mut i32) (i32.const 1024))
          (func (export "alloc") (param $n i32) (result i32)
            (local $p i32) (local.set $p (global.get $heap))
            (global.set $heap (i32.add (global.get $heap) (local.get $n))) (local.get $p))
          (func (export "on_message") (param $p i32) (param $n i32) (result i64)
            (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32)) (i64.extend_i32_u (local.get $n)))))
        """);

    public static int Run(int invocations)
    {
        using var runtime = new PluginRuntime(Options.Create(new SandboxOptions()));
        var wasm = EchoWasm;
        var manifest = new PluginManifest("dev.clippybot.bench", "Bench", "1.0.0", "ClippyBot", "", [new EntryPoint("on_message", "on_message")], [], null);
        var compile = Stopwatch.StartNew();
        using var plugin = runtime.Compile(wasm, manifest);
        var compileMs = compile.Elapsed.TotalMilliseconds;
        var input = """{"event":"message","text":"hello"}"""u8.ToArray();
        var grants = new HashSet<string>();
        for (var i = 0; i < 2000; i++)
        {
            runtime.Invoke(plugin, "on_message", input, grants);
        }
        var samples = new double[invocations];
        for (var i = 0; i < invocations; i++)
        {
            var start = Stopwatch.GetTimestamp();
            var result = runtime.Invoke(plugin, "on_message", input, grants);
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            if (!result.Succeeded)
            {
                Console.Error.WriteLine($"invocation failed: {result.Kind}");
                return 1;
            }
        }
        Array.Sort(samples);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"RESULT invocations={invocations} p50_us={samples[invocations / 2]:0.0} p99_us={samples[invocations * 99 / 100]:0.0} max_us={samples[^1]:0.0} compile_ms={compileMs:0.0}"));
        return 0;
    }
}
