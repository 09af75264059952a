using System.Globalization;
using ClippyBot.Backup.PointInTime;

namespace ClippyBot.Backup;

/// <summary>
/// <c>clippybot-backup</c>: encrypted backups of ClippyBot's PostgreSQL databases (docs/backup.md).
/// <code>
/// backup  --server CONN --database NAME [--database NAME …] --out FILE
/// verify  --archive FILE
/// restore --archive FILE --server CONN
/// pitr    --target-time TIME --into DIR [--repo N] [--cluster main|subjectkeys]   (pgBackRest: the cluster as it was at TIME)
/// drill   [--repo N] [--database NAME …] [--compare-live yes|no] [--cluster …]   (pgBackRest: restore the newest backup and WAL, check, measure)
/// </code>
/// The key comes from <c>--key-file FILE</c> or the environment variable <c>CLIPPYBOT_BACKUP_KEY</c> (a random secret of at
/// least 43 characters). Exit codes: 0 done, 1 failed (message on stderr), 2 usage.
/// </summary>
public static class BackupCli
{
    public const string KeyVariable = "CLIPPYBOT_BACKUP_KEY";

    public static async Task<int> RunAsync(string[] args, TextWriter output, TextWriter error, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            await error.WriteLineAsync(Usage);
            return 2;
        }
        Dictionary<string, List<string>> options;
        try
        {
            options = Parse(args[1..]);
        }
        catch (UsageException e)
        {
            await error.WriteLineAsync(e.Message + "\n\n" + Usage);
            return 2;
        }
        try
        {
            PostgresTools Tools() => PostgresTools.Locate(Single(options, "pg-bin", required: false));
            switch (args[0])
            {
                case "backup":
                {
                    var databases = options.GetValueOrDefault("database") ?? throw new UsageException("Name at least one --database.");
                    var (server, target) = (Single(options, "server")!, Single(options, "out")!);
                    var key = ArchiveKey.Load(Single(options, "key-file", required: false));
                    var manifest = await Archive.CreateAsync(Tools(), server, databases, target, key, ct);
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                        $"Backed up {manifest.Databases.Count} database(s), {manifest.Databases.Sum(d => d.Bytes)} bytes of dumps, into {target}."));
                    return 0;
                }
                case "verify":
                {
                    var archive = Single(options, "archive")!;
                    var key = ArchiveKey.Load(Single(options, "key-file", required: false));
                    var manifest = await Archive.VerifyAsync(archive, key, ct);
                    await output.WriteLineAsync($"Archive intact: {string.Join(", ", manifest.Databases.Select(d => d.Name))} (made {manifest.CreatedAt:u}).");
                    return 0;
                }
                case "restore":
                {
                    var (archive, server) = (Single(options, "archive")!, Single(options, "server")!);
                    var key = ArchiveKey.Load(Single(options, "key-file", required: false));
                    var manifest = await Archive.RestoreAsync(Tools(), archive, server, key, ct);
                    await output.WriteLineAsync($"Restored {string.Join(", ", manifest.Databases.Select(d => d.Name))}.");
                    return 0;
                }
                case "pitr":
                {
                    var target = ParseMoment(Single(options, "target-time")!);
                    var into = Path.GetFullPath(Single(options, "into")!);
                    var repository = Repository(options);
                    var pgBackRest = PgBackRest.Open(ConfigFile(options));
                    var databases = await Recovery.RestoreToAsync(pgBackRest, repository, target, into, ct);
                    await output.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"""
                        Restored the cluster as it was at {PgBackRest.FormatTarget(target)} from repository {repository} into {into}.
                        It started, finished recovery and was stopped again; databases: {string.Join(", ", databases)}.
                        Next (docs/backup.md, "Switching to a restored cluster"): stop the AppHost, move the live data folder aside,
                        move {into} into its place (owned by postgres, mode 0700), start the AppHost, then take a full backup.
                        """));
                    return 0;
                }
                case "drill":
                {
                    var pgBackRest = PgBackRest.Open(ConfigFile(options));
                    var compareWithLive = Single(options, "compare-live", required: false) switch
                    {
                        null or "yes" => true,
                        "no" => false,
                        _ => throw new UsageException("--compare-live is yes or no."),
                    };
                    var result = await Recovery.DrillAsync(pgBackRest, Repository(options), options.GetValueOrDefault("database") ?? [], TimeProvider.System, ct, compareWithLive);
                    await output.WriteLineAsync(result.ToString());
                    return 0;
                }
                default:
                    throw new UsageException($"Unknown command '{args[0]}'.");
            }
        }
        catch (UsageException e)
        {
            await error.WriteLineAsync(e.Message + "\n\n" + Usage);
            return 2;
        }
        catch (BackupException e)
        {
            await error.WriteLineAsync("clippybot-backup: " + e.Message);
            return 1;
        }
    }

    private const string Usage = """
        usage: clippybot-backup backup  --server CONN --database NAME [--database NAME ...] --out FILE
               clippybot-backup verify  --archive FILE
               clippybot-backup restore --archive FILE --server CONN
               clippybot-backup pitr    --target-time "2026-12-03 11:20:00+00" --into DIR [--repo N] [--cluster main|subjectkeys]
               clippybot-backup drill   [--repo N] [--database NAME ...] [--compare-live yes|no] [--cluster ...]
        options: --key-file FILE (else $CLIPPYBOT_BACKUP_KEY), --pg-bin DIR (else PATH, then /usr/lib/postgresql/*/bin)
        CONN is an Npgsql connection string to the server, e.g. "Host=127.0.0.1;Port=5432;Username=postgres;Password=…".
        pitr and drill use pgBackRest's configuration: --config FILE, else $CLIPPYBOT_PGBACKREST_CONFIG, else the one the
        AppHost wrote for this checkout's cluster (--cluster main, the default, or --cluster subjectkeys for people's keys;
        .clippybot/pgbackrest-config[-subjectkeys] names it). --repo picks the repository (default 1).
        """;

    public const string ConfigVariable = "CLIPPYBOT_PGBACKREST_CONFIG";

    /// <summary>The file in the checkout's <c>.clippybot/</c> where the AppHost names its pgBackRest configuration.</summary>
    public const string ConfigPointer = "pgbackrest-config";

    private static string ConfigFile(Dictionary<string, List<string>> options)
    {
        if (Single(options, "config", required: false) is { } configured)
        {
            return configured;
        }
        if (Environment.GetEnvironmentVariable(ConfigVariable) is { Length: > 0 } fromEnvironment)
        {
            return fromEnvironment;
        }
        var pointerName = Single(options, "cluster", required: false) switch
        {
            null or "main" => ConfigPointer,
            "subjectkeys" => ConfigPointer + "-subjectkeys",
            _ => throw new UsageException("--cluster is main (every service database but people's keys) or subjectkeys."),
        };
        return FindConfigPointer(Environment.CurrentDirectory, pointerName)
            ?? throw new UsageException($"No pgBackRest configuration found: pass --config FILE or set {ConfigVariable}.");
    }

    /// <summary>The configuration named by the nearest <c>.clippybot/<paramref name="pointerName"/></c> at or above <paramref name="folder"/>.</summary>
    public static string? FindConfigPointer(string folder, string pointerName = ConfigPointer)
    {
        for (var current = new DirectoryInfo(folder); current is not null; current = current.Parent)
        {
            var folderName = current.FullName;
            var pointer = Path.Combine(folderName, ".clippybot", pointerName);
            if (File.Exists(pointer))
            {
                // The pointer is found by walking up from wherever the operator stands: it (and what it names) must be
                // files nobody else could have written, or a planted one would steer the restore. Checked before it is
                // read, and no link is followed (nobody else can write the folder, so nothing can be swapped in between).
                if (!OperatingSystem.IsWindows() && (new FileInfo(pointer).LinkTarget is not null || !Trusted(Path.GetDirectoryName(pointer)!) || !Trusted(pointer)))
                {
                    throw new UsageException($"'{pointer}' belongs to someone else, is a link or can be written by others: pass --config FILE.");
                }
                var named = File.ReadAllText(pointer).Trim();
                // The configuration belongs to the postgres OS user (pgBackRest runs as it) or the operator; only its owner reads it.
                if (!OperatingSystem.IsWindows() && File.Exists(named)
                    && (!Trusted(named, alsoServiceUser: true) || (File.GetUnixFileMode(named) & (UnixFileMode.GroupRead | UnixFileMode.OtherRead)) != 0))
                {
                    throw new UsageException($"The configuration '{named}' that '{pointer}' names belongs to someone else or can be read or written by others: pass --config FILE.");
                }
                return named;
            }
        }
        return null;
    }

    /// <summary>Owned by this user or root (or, with <paramref name="alsoServiceUser"/>, the postgres OS user) and writable by nobody else.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static bool Trusted(string path, bool alsoServiceUser = false)
    {
        if ((File.GetUnixFileMode(path) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) != 0)
        {
            return false;
        }
        var owner = Tool("stat", "-L", "-c", "%u", path);
        return owner == "0" || owner == Tool("id", "-u") || (alsoServiceUser && owner == ServiceUserId());
    }

    private static string? ServiceUserId()
    {
        try
        {
            return Tool("id", "-u", ClippyBot.Backup.PointInTime.ServiceUser.Name);
        }
        catch (BackupException)
        {
            return null;
        }
    }

    private static string Tool(string fileName, params string[] arguments)
    {
        using var process = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(fileName, arguments)
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        }) ?? throw new BackupException($"{fileName} did not start.");
        var output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return process.ExitCode == 0 ? output : throw new BackupException($"{fileName} failed ({process.ExitCode}).");
    }

    private static int Repository(Dictionary<string, List<string>> options) =>
        Single(options, "repo", required: false) is not { } text ? 1
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 4 ? n
        : throw new UsageException("--repo is a repository number, 1 to 4.");

    /// <summary>A moment with its zone (e.g. <c>2026-12-03 11:20:00+00</c>); a time without one is refused, never guessed.</summary>
    private static DateTimeOffset ParseMoment(string text)
    {
        var normalized = System.Text.RegularExpressions.Regex.IsMatch(text, @"[+-]\d\d$") ? text + ":00" : text;
        return System.Text.RegularExpressions.Regex.IsMatch(normalized, @"(Z|[+-]\d\d:\d\d)$")
            && DateTimeOffset.TryParse(normalized, CultureInfo.InvariantCulture, DateTimeStyles.None, out var moment)
            ? moment
            : throw new UsageException($"--target-time '{text}' is not a time with its zone, e.g. \"2026-12-03 11:20:00+00\".");
    }

    private static Dictionary<string, List<string>> Parse(string[] args)
    {
        var options = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new UsageException($"Expected --option VALUE at '{args[i]}'.");
            }
            var name = args[i][2..];
            if (!options.TryGetValue(name, out var values))
            {
                options[name] = values = [];
            }
            values.Add(args[++i]);
        }
        return options;
    }

    private static string? Single(Dictionary<string, List<string>> options, string name, bool required = true) =>
        options.TryGetValue(name, out var values)
            ? values.Count == 1 ? values[0] : throw new UsageException($"--{name} given more than once.")
            : required ? throw new UsageException($"--{name} is required.") : null;
}

public sealed class UsageException(string message) : Exception(message);

/// <summary>A failure the operator can act on; the message says what and what to do.</summary>
public sealed class BackupException(string message, Exception? inner = null) : Exception(message, inner);
