using System.Diagnostics;
using System.Text;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>Runs short-lived tools (initdb, pg_ctl, chown) and turns failures into readable exceptions.</summary>
public static class ProcessRunner
{
    public static string Run(string fileName, IEnumerable<string> arguments, TimeSpan timeout, string? workingDirectory = null)
    {
        var startInfo = new ProcessStartInfo(fileName, arguments)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        var output = new StringBuilder();
        using var process = new Process { StartInfo = startInfo };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (output) { output.AppendLine(e.Data); } } };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"'{Path.GetFileName(fileName)}' did not finish within {timeout.TotalSeconds:0} s.");
        }
        process.WaitForExit(); // flushes the async readers
        lock (output)
        {
            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException(
                    $"'{Path.GetFileName(fileName)} {string.Join(' ', startInfo.ArgumentList)}' exited with {process.ExitCode}: {output.ToString().Trim()}");
            }
            return output.ToString();
        }
    }
}
