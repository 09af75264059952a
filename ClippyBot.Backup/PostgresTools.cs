using System.Diagnostics;
using Npgsql;

namespace ClippyBot.Backup;

/// <summary><c>pg_dump</c> and <c>pg_restore</c> of the machine's PostgreSQL (the server's major version or newer).</summary>
public sealed class PostgresTools(string binDirectory)
{
    public static PostgresTools Locate(string? configured)
    {
        var candidates = new List<string>();
        if (configured is not null)
        {
            candidates.Add(configured);
        }
        candidates.AddRange((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        if (Directory.Exists("/usr/lib/postgresql"))
        {
            candidates.AddRange(Directory.GetDirectories("/usr/lib/postgresql").OrderByDescending(d => d, StringComparer.Ordinal).Select(d => Path.Combine(d, "bin")));
        }
        var found = candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "pg_dump")) && File.Exists(Path.Combine(d, "pg_restore")));
        return found is null
            ? throw new BackupException("pg_dump/pg_restore not found: install PostgreSQL's client tools or pass --pg-bin DIR.")
            : new PostgresTools(found);
    }

    public Task DumpAsync(NpgsqlConnectionStringBuilder server, string database, string file, CancellationToken ct) =>
        RunAsync("pg_dump", server, ["--format=custom", "--no-owner", "--file", file, "--dbname", database], ct);

    /// <param name="singleTransaction">All or nothing: a failure (or a stop) leaves the database as it was.</param>
    public Task RestoreAsync(NpgsqlConnectionStringBuilder server, string database, string file, CancellationToken ct, bool singleTransaction = false) =>
        RunAsync("pg_restore", server, ["--no-owner", "--exit-on-error", .. (singleTransaction ? (string[])["--single-transaction"] : []), "--dbname", database, file], ct);

    private async Task RunAsync(string tool, NpgsqlConnectionStringBuilder server, IEnumerable<string> arguments, CancellationToken ct)
    {
        var start = new ProcessStartInfo(Path.Combine(binDirectory, tool)) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var argument in (string[])["--host", server.Host ?? "127.0.0.1", "--port", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--username", server.Username ?? "postgres"])
        {
            start.ArgumentList.Add(argument);
        }
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        // The password goes through the environment, never the command line (ps would show it).
        start.Environment["PGPASSWORD"] = server.Password ?? "";
        using var process = Process.Start(start) ?? throw new BackupException($"{tool} did not start.");
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.StandardOutput.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0)
        {
            throw new BackupException($"{tool} failed ({process.ExitCode}): {(await stderr).Trim()}");
        }
    }
}
