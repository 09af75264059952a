using System.Diagnostics;
using System.Text;

namespace ClippyBot.Backup.PointInTime;

/// <summary>
/// PostgreSQL's server-side tools (postgres, pg_ctl, pgbackrest) run as the <c>postgres</c> OS user: PostgreSQL refuses
/// root, and pgBackRest must own the repositories the server's <c>archive_command</c> writes to. As root, <c>setpriv</c>
/// switches user and execs in place; otherwise commands run as they are.
/// </summary>
public static class ServiceUser
{
    public const string Name = "postgres";

    public static bool RunningAsRoot => Environment.IsPrivilegedProcess;

    public static (string FileName, IReadOnlyList<string> Arguments) Wrap(string fileName, IEnumerable<string> arguments) =>
        RunningAsRoot
            ? ("setpriv", [$"--reuid={Name}", $"--regid={Name}", "--init-groups", fileName, .. arguments])
            : (fileName, arguments.ToList());

    /// <summary>Runs a tool as the service user; returns its output, or throws <see cref="BackupException"/> with it.</summary>
    public static async Task<string> RunAsync(string fileName, IEnumerable<string> arguments, TimeSpan timeout, CancellationToken ct)
    {
        var (file, args) = Wrap(fileName, arguments);
        var start = new ProcessStartInfo(file, args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = "/",
        };
        using var process = Process.Start(start) ?? throw new BackupException($"{Path.GetFileName(fileName)} did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(deadline.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            ct.ThrowIfCancellationRequested();
            throw new BackupException($"{Path.GetFileName(fileName)} {string.Join(' ', arguments.Take(1))} did not finish within {timeout.TotalSeconds:0} s.");
        }
        // Standard output is the tool's answer (pgBackRest's JSON); warnings on standard error must not corrupt it.
        var output = (await stdout).Trim();
        var errors = (await stderr).Trim();
        return process.ExitCode == 0
            ? output
            : throw new BackupException($"{Path.GetFileName(fileName)} {string.Join(' ', arguments.Where(a => !a.StartsWith("--config", StringComparison.Ordinal)).Take(3))} failed ({process.ExitCode}): {new StringBuilder(errors).Append(errors.Length > 0 && output.Length > 0 ? " " : "").Append(output)}");
    }

    /// <summary>Gives a folder (and everything in it) to the service user, owner-only.</summary>
    public static void Own(string path)
    {
        // chmod follows links: a link planted where a folder is expected would hand its target to the service user.
        if (new DirectoryInfo(path).LinkTarget is not null || new FileInfo(path).LinkTarget is not null)
        {
            throw new BackupException($"'{path}' is a link; give a real folder.");
        }
        Directory.CreateDirectory(path);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        if (RunningAsRoot)
        {
            using var chown = Process.Start(new ProcessStartInfo("chown", ["-R", $"{Name}:{Name}", path]) { UseShellExecute = false })!;
            chown.WaitForExit();
            if (chown.ExitCode != 0)
            {
                throw new BackupException($"chown of '{path}' to {Name} failed ({chown.ExitCode}).");
            }
        }
    }
}
