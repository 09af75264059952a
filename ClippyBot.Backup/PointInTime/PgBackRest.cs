using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace ClippyBot.Backup.PointInTime;

/// <summary>Where pgBackRest keeps things for one local cluster (docs/backup.md, "Point-in-time recovery").</summary>
/// <param name="Root">pgBackRest's own folder: configuration, passphrases, spool, log, locks.</param>
/// <param name="Repositories">One folder per repository. In production each is a bucket in another region (S3, GCS, Azure).</param>
/// <param name="DataDirectory">The cluster's PGDATA.</param>
/// <param name="SocketDirectory">The cluster's Unix socket folder: pgBackRest talks to the server through it (peer authentication).</param>
/// <param name="RecoveryWindow">How far back point-in-time recovery must reach; full backups and WAL are kept to cover it.</param>
public sealed record PgBackRestLayout(string Root, IReadOnlyList<string> Repositories, string DataDirectory, string SocketDirectory, int Port, TimeSpan RecoveryWindow);

/// <summary>One backup as <c>pgbackrest info</c> reports it.</summary>
public sealed record BackupSet(int Repository, string Label, string Type, DateTimeOffset Stopped, long Bytes);

/// <summary>
/// pgBackRest for the local cluster: continuous WAL archiving and full/differential backups into every repository, each
/// encrypted (aes-256-cbc, a passphrase per repository generated once per machine and kept owner-only — never on a command
/// line), retention that covers the recovery window, and restores to a moment. The engine is pgBackRest's; this class only
/// writes its configuration and runs its commands as the <c>postgres</c> OS user.
/// </summary>
public sealed class PgBackRest
{
    public const string Stanza = "clippybot";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(30);

    private PgBackRest(string executable, string configFile, int repositories, LiveCluster live)
    {
        Executable = executable;
        ConfigFile = configFile;
        Repositories = repositories;
        Live = live;
    }

    /// <summary>Where the archived cluster itself runs: the drill compares what it restored with it.</summary>
    public sealed record LiveCluster(string DataDirectory, string SocketDirectory, int Port)
    {
        /// <summary>One SQL statement against the live cluster, as the <c>postgres</c> OS user over its socket (as pgBackRest reaches it).</summary>
        public Task<string> QueryAsync(string database, string sql, CancellationToken ct) =>
            RestoredCluster.Psql(RestoredCluster.ServerBinariesFor(DataDirectory), SocketDirectory, Port, database, sql, ct);
    }

    public string Executable { get; }

    public string ConfigFile { get; }

    public int Repositories { get; }

    public LiveCluster Live { get; }

    /// <summary>pgBackRest's binary (Debian package <c>pgbackrest</c>), or null when it is not installed.</summary>
    public static string? Locate() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Select(d => Path.Combine(d, "pgbackrest"))
            .FirstOrDefault(File.Exists);

    /// <summary>An existing configuration (written by <see cref="Configure"/>), for the operator's commands.</summary>
    public static PgBackRest Open(string configFile)
    {
        var executable = Locate() ?? throw new BackupException("pgbackrest is not installed (Debian: apt-get install -y pgbackrest).");
        if (!File.Exists(configFile))
        {
            throw new BackupException($"No pgBackRest configuration at '{configFile}': start the AppHost once with pgbackrest installed, or pass --config FILE.");
        }
        var lines = File.ReadAllLines(configFile);
        var repositories = lines.Count(l => l.StartsWith("repo", StringComparison.Ordinal) && l.Contains("-path=", StringComparison.Ordinal));
        string Setting(string name) => lines.FirstOrDefault(l => l.StartsWith(name + "=", StringComparison.Ordinal))?[(name.Length + 1)..]
            ?? throw new BackupException($"The pgBackRest configuration '{configFile}' has no {name}: start the AppHost once to write it again.");
        var port = int.TryParse(Setting("pg1-port"), NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p
            : throw new BackupException($"The pgBackRest configuration '{configFile}' has no valid pg1-port.");
        return new PgBackRest(executable, configFile, repositories, new(Setting("pg1-path"), Setting("pg1-socket-path"), port));
    }

    /// <summary>Writes the configuration (again: ports and paths may change between runs; the passphrases never do).</summary>
    public static PgBackRest Configure(PgBackRestLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        foreach (var path in new[] { layout.Root, layout.DataDirectory, layout.SocketDirectory }.Concat(layout.Repositories))
        {
            ShellSafe(Path.GetFullPath(path));
        }
        var repositories = layout.Repositories.Select(r => Path.GetFullPath(r).TrimEnd('/') + "/").ToList();
        if (repositories.Distinct(StringComparer.Ordinal).Count() != repositories.Count
            || repositories.Any(r => (Path.GetFullPath(layout.DataDirectory).TrimEnd('/') + "/").StartsWith(r, StringComparison.Ordinal)
                || r.StartsWith(Path.GetFullPath(layout.DataDirectory).TrimEnd('/') + "/", StringComparison.Ordinal)
                || r.StartsWith(Path.GetFullPath(layout.Root).TrimEnd('/') + "/", StringComparison.Ordinal)))
        {
            throw new BackupException("Each backup repository must be a folder of its own, outside the cluster's data and pgBackRest's own folder.");
        }
        var executable = Locate() ?? throw new BackupException("pgbackrest is not installed (Debian: apt-get install -y pgbackrest).");
        if (layout.Repositories.Count is < 1 or > 4)
        {
            throw new BackupException("pgBackRest takes one to four repositories.");
        }
        Directory.CreateDirectory(layout.Root);
        foreach (var folder in new[] { "spool", "log", "lock" })
        {
            Directory.CreateDirectory(Path.Combine(layout.Root, folder));
        }
        var passphrases = Passphrases(Path.Combine(layout.Root, "cipher-pass"), layout.Repositories.Count);
        var text = new StringBuilder()
            .AppendLine("# Written by ClippyBot's AppHost at every start; edit LocalInfrastructure settings instead.")
            .AppendLine("[global]");
        for (var i = 0; i < layout.Repositories.Count; i++)
        {
            var n = i + 1;
            text.AppendLine(CultureInfo.InvariantCulture, $"repo{n}-path={Path.GetFullPath(layout.Repositories[i])}")
                .AppendLine(CultureInfo.InvariantCulture, $"repo{n}-cipher-pass={passphrases[i]}");
        }
        foreach (var (option, value) in SharedOptions(layout.Repositories.Count, layout.RecoveryWindow))
        {
            text.AppendLine(CultureInfo.InvariantCulture, $"{option}={value}");
        }
        text.AppendLine(CultureInfo.InvariantCulture, $"spool-path={Path.Combine(layout.Root, "spool")}")
            .AppendLine(CultureInfo.InvariantCulture, $"log-path={Path.Combine(layout.Root, "log")}")
            .AppendLine(CultureInfo.InvariantCulture, $"lock-path={Path.Combine(layout.Root, "lock")}")
            .AppendLine(CultureInfo.InvariantCulture, $"[{Stanza}]")
            .AppendLine(CultureInfo.InvariantCulture, $"pg1-path={Path.GetFullPath(layout.DataDirectory)}")
            .AppendLine(CultureInfo.InvariantCulture, $"pg1-port={layout.Port}")
            .AppendLine(CultureInfo.InvariantCulture, $"pg1-socket-path={Path.GetFullPath(layout.SocketDirectory)}")
            .AppendLine(CultureInfo.InvariantCulture, $"pg1-user={ServiceUser.Name}");
        var configFile = Path.Combine(layout.Root, "pgbackrest.conf");
        ClippyBot.Security.OwnerOnlyFile.Write(configFile, text.ToString());
        foreach (var repository in layout.Repositories)
        {
            ServiceUser.Own(repository);
        }
        Directory.CreateDirectory(layout.SocketDirectory);
        ServiceUser.Own(layout.SocketDirectory);
        ServiceUser.Own(layout.Root);
        return new PgBackRest(executable, configFile, layout.Repositories.Count,
            new(Path.GetFullPath(layout.DataDirectory), Path.GetFullPath(layout.SocketDirectory), layout.Port));
    }

    /// <summary>
    /// The options every deployment shares (local mode's configuration file, containers mode's <c>PGBACKREST_*</c>
    /// environment): each repository encrypted, full backups and WAL kept for the recovery window, asynchronous archiving.
    /// </summary>
    public static IReadOnlyList<(string Option, string Value)> SharedOptions(int repositories, TimeSpan recoveryWindow)
    {
        var days = Math.Max(1, (int)Math.Ceiling(recoveryWindow.TotalDays)).ToString(CultureInfo.InvariantCulture);
        List<(string, string)> options = [];
        for (var n = 1; n <= repositories; n++)
        {
            options.Add(($"repo{n}-cipher-type", "aes-256-cbc"));
            // Time-based: the newest full backup older than the window is kept, so any moment of the window is reachable.
            options.Add(($"repo{n}-retention-full-type", "time"));
            options.Add(($"repo{n}-retention-full", days));
        }
        options.AddRange([("archive-async", "y"), ("log-level-console", "warn"), ("log-level-file", "info"), ("compress-type", "lz4"), ("start-fast", "y")]);
        return options;
    }

    /// <summary>The environment variable pgBackRest reads an option from (<c>repo1-cipher-pass</c> → <c>PGBACKREST_REPO1_CIPHER_PASS</c>).</summary>
    public static string EnvironmentName(string option) =>
        "PGBACKREST_" + option.Replace('-', '_').ToUpperInvariant();

    /// <summary>The server settings that archive every WAL segment into the repositories (a server that writes closes a segment at least once a minute; an idle one writes none).</summary>
    /// <remarks>The server runs <c>archive_command</c> through a shell (and pg_ctl runs the restored server through one):
    /// every path that reaches a shell is checked by <see cref="ShellSafe"/> first.</remarks>
    public IReadOnlyList<string> ArchiveSettings(string socketDirectory) =>
    [
        .. ServerArchiveSettings($"'{Executable}' '--config={ConfigFile}'"),
        "-c", $"unix_socket_directories={ShellSafe(socketDirectory)}",
    ];

    /// <summary>The archiving settings for a server whose pgBackRest is configured by its environment (a container).</summary>
    public static IReadOnlyList<string> ServerArchiveSettings(string pgBackRestCommand = "pgbackrest") =>
    [
        "-c", "wal_level=replica",
        "-c", "archive_mode=on",
        "-c", $"archive_command={pgBackRestCommand} --stanza={Stanza} archive-push %p",
        "-c", "archive_timeout=60",
    ];

    /// <summary>
    /// A path a shell reads literally whether quoted or not: letters, digits and <c>/ . _ -</c> only. pg_ctl puts paths in
    /// double quotes, where <c>$(…)</c> would still run; an allowlist leaves nothing to escape.
    /// </summary>
    public static string ShellSafe(string path) =>
        path.Length > 0 && path.All(c => char.IsAsciiLetterOrDigit(c) || c is '/' or '.' or '_' or '-')
            ? path
            : throw new BackupException($"The path '{path}' holds characters other than letters, digits and / . _ -; PostgreSQL's and pgBackRest's commands run through a shell and could not name it safely. Choose another folder.");

    /// <summary>Creates the stanza (or checks that it matches this cluster), then checks that archiving works end to end.</summary>
    public async Task EnsureStanzaAsync(CancellationToken ct)
    {
        await RetriedWhileLockedAsync(["stanza-create"], ct);
        await RetriedWhileLockedAsync(["check"], ct);
    }

    /// <summary>The asynchronous archiver holds the stanza's archive lock while it pushes: a command that needs it waits its turn.</summary>
    private async Task RetriedWhileLockedAsync(string[] arguments, CancellationToken ct)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            try
            {
                await RunAsync(arguments, ct);
                return;
            }
            catch (BackupException e) when (e.Message.Contains("unable to acquire lock", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(500), ct);
            }
        }
    }

    public Task BackupAsync(string type, int repository, CancellationToken ct) =>
        RunAsync(["backup", $"--type={type}", $"--repo={repository}"], ct);

    /// <summary>Every backup in every repository, oldest first.</summary>
    public async Task<IReadOnlyList<BackupSet>> InfoAsync(CancellationToken ct)
    {
        var json = await RunAsync(["info", "--output=json"], ct);
        using var document = JsonDocument.Parse(json);
        var sets = new List<BackupSet>();
        foreach (var stanza in document.RootElement.EnumerateArray())
        {
            if (!stanza.TryGetProperty("backup", out var backups))
            {
                continue;
            }
            foreach (var backup in backups.EnumerateArray())
            {
                sets.Add(new BackupSet(
                    backup.GetProperty("database").GetProperty("repo-key").GetInt32(),
                    backup.GetProperty("label").GetString()!,
                    backup.GetProperty("type").GetString()!,
                    DateTimeOffset.FromUnixTimeSeconds(backup.GetProperty("timestamp").GetProperty("stop").GetInt64()),
                    backup.GetProperty("info").GetProperty("repository").GetProperty("delta").GetInt64()));
            }
        }
        return [.. sets.OrderBy(s => s.Stopped)];
    }

    /// <summary>
    /// Restores into <paramref name="into"/> (a new, empty folder): to <paramref name="target"/> when given (then the server
    /// promotes there), else to the end of the archived WAL. The restored server does not archive (it would write a new
    /// timeline into the live cluster's repositories).
    /// </summary>
    public Task RestoreAsync(string into, int repository, DateTimeOffset? target, CancellationToken ct)
    {
        // A spool of the restore's own, beside the restored folder: restore empties its stanza's spool, and the shared one is
        // where the live cluster, still archiving asynchronously, queues its pushes (a drill raced it). The restored server's
        // restore_command carries the option, so its WAL fetches stay out of the live spool too.
        var spool = Path.GetFullPath(into) + ".spool";
        if (Directory.Exists(spool) && Directory.EnumerateFileSystemEntries(spool).Any())
        {
            throw new BackupException($"'{spool}' already exists and is not empty: remove it, or restore into another folder.");
        }
        ServiceUser.Own(spool);
        List<string> arguments = ["restore", $"--repo={repository}", $"--pg1-path={Path.GetFullPath(into)}", "--archive-mode=off", $"--spool-path={spool}"];
        if (target is { } moment)
        {
            arguments.AddRange(["--type=time", $"--target={FormatTarget(moment)}", "--target-action=promote"]);
        }
        return RunAsync(arguments, ct);
    }

    /// <summary>Removes backups and WAL older than every repository's retention (pgBackRest does this after each backup too).</summary>
    public Task ExpireAsync(CancellationToken ct) => RunAsync(["expire"], ct);

    /// <summary>A PostgreSQL timestamp with zone, to the microsecond, in UTC.</summary>
    public static string FormatTarget(DateTimeOffset moment) =>
        moment.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss.ffffff'+00'", CultureInfo.InvariantCulture);

    private Task<string> RunAsync(IEnumerable<string> arguments, CancellationToken ct) =>
        ServiceUser.RunAsync(Executable, [$"--config={ConfigFile}", $"--stanza={Stanza}", .. arguments], CommandTimeout, ct);

    /// <summary>The repositories' passphrases: made once (256 random bits each), then read back; one line per repository.</summary>
    private static string[] Passphrases(string file, int count)
    {
        var existing = File.Exists(file) ? ClippyBot.Security.OwnerOnlyFile.ReadAllLines(file).Where(l => l.Length > 0).ToList() : [];
        if (existing.Count < count)
        {
            existing.AddRange(Enumerable.Range(0, count - existing.Count).Select(_ => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))));
            ClippyBot.Security.OwnerOnlyFile.Write(file, string.Join('\n', existing) + "\n");
        }
        return [.. existing.Take(count)];
    }
}
