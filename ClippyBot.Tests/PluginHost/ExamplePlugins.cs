using System.Diagnostics;
using ClippyBot.Tests.Rig;

namespace ClippyBot.Tests.PluginHost;

/// <summary>Builds the example plugins from source with their real toolchain (plugins/examples/build.sh, AssemblyScript).</summary>
public static class ExamplePlugins
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static async Task<(byte[] Wasm, byte[] Manifest)> BuildAsync(string name, CancellationToken ct)
    {
        var examples = Path.Combine(Repository.Root, "plugins", "examples");
        await Gate.WaitAsync(ct);
        try
        {
            var start = new ProcessStartInfo("bash") { WorkingDirectory = examples, RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add("build.sh");
            using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start");
            var output = process.StandardOutput.ReadToEndAsync(ct);
            var error = process.StandardError.ReadToEndAsync(ct);
            await process.WaitForExitAsync(ct);
            Assert.AreEqual(0, process.ExitCode, $"build.sh failed:\n{await output}\n{await error}");
        }
        finally
        {
            Gate.Release();
        }
        return (await File.ReadAllBytesAsync(Path.Combine(examples, "out", name + ".wasm"), ct),
            await File.ReadAllBytesAsync(Path.Combine(examples, "out", name + ".manifest.json"), ct));
    }
}
