using System.Security.Cryptography;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// A PostgreSQL cluster made from the machine's server binaries: initdb once into a data folder, then run the
/// <c>postgres</c> server in the foreground. PostgreSQL refuses to run as root, so as root every server-side command runs
/// as the <c>postgres</c> OS user through <c>setpriv</c>, which execs in place so signals reach the server.
/// Shared by the AppHost (local mode) and the test rig, so both start PostgreSQL the same way.
/// </summary>
public sealed class PostgresCluster
{
    public const string SuperUser = "postgres";
    private const string ServiceUser = "postgres";

    private PostgresCluster(string binDirectory, string dataRoot)
    {
        BinDirectory = binDirectory;
        DataRoot = dataRoot;
    }

    public string BinDirectory { get; }

    /// <summary>Folder owned by the cluster: <c>data/</c> (PGDATA) and <c>password</c>.</summary>
    public string DataRoot { get; }

    public string DataDirectory => Path.Combine(DataRoot, "data");

    public string PasswordFile => Path.Combine(DataRoot, "password");

    public string PostgresExecutable => Path.Combine(BinDirectory, "postgres");

    public static bool RunningAsRoot => Environment.IsPrivilegedProcess;

    /// <summary>Finds the server binaries or fails with a message naming the fix.</summary>
    public static PostgresCluster Create(string dataRoot, string binDirectory)
    {
        ArgumentException.ThrowIfNullOrEmpty(dataRoot);
        Directory.CreateDirectory(dataRoot);
        return new PostgresCluster(binDirectory, Path.GetFullPath(dataRoot));
    }

    public static string LocateBinaries(string? configured) => LocateBinaries(configured, DefaultCandidates());

    /// <summary>Candidate folders in order of preference: Debian's versioned folders (newest first), PATH, common prefixes.</summary>
    public static IEnumerable<string> DefaultCandidates()
    {
        // Debian/Ubuntu keep server binaries out of PATH, one folder per major version.
        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            foreach (var dir in Directory.GetDirectories(debianRoot).OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0))
            {
                yield return Path.Combine(dir, "bin");
            }
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            yield return dir;
        }
        yield return "/usr/local/pgsql/bin";
        yield return "/opt/homebrew/bin";
    }

    public static string LocateBinaries(string? configured, IEnumerable<string> candidates)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        static bool HasServer(string? dir) =>
            !string.IsNullOrWhiteSpace(dir)
            && File.Exists(Path.Combine(dir, "postgres"))
            && File.Exists(Path.Combine(dir, "initdb"))
            && File.Exists(Path.Combine(dir, "pg_ctl"));

        if (!string.IsNullOrWhiteSpace(configured))
        {
            return HasServer(configured)
                ? configured
                : throw new InfrastructureConfigurationException(
                    $"LocalInfrastructure:PostgresBinDirectory '{configured}' does not contain postgres, initdb and pg_ctl. Point it at the server's bin folder (`pg_config --bindir`).");
        }

        return candidates.FirstOrDefault(HasServer)
            ?? throw new InfrastructureConfigurationException(
                "PostgreSQL server binaries (postgres, initdb, pg_ctl) were not found, so local mode cannot start a database. " +
                "Install them (Debian/Ubuntu: `apt-get install -y postgresql`), set LocalInfrastructure:PostgresBinDirectory to their folder, " +
                "or run with --Infrastructure=containers where a container runtime is available.");
    }

    /// <summary>Creates the cluster on first use (scram-sha-256, TCP on loopback only) and returns the superuser password.</summary>
    /// <summary>A login role's password, generated once per machine and kept beside the cluster's (owner-only file).</summary>
    public string EnsureRolePassword(string role)
    {
        var folder = Path.Combine(DataRoot, "roles");
        Directory.CreateDirectory(folder);
        OwnerOnly.Directory(folder);
        var file = Path.Combine(folder, role);
        if (File.Exists(file))
        {
            return File.ReadAllText(file).Trim();
        }
        var password = RandomNumberGenerator.GetString("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", 32);
        ClippyBot.Security.OwnerOnlyFile.Write(file, password);
        return password;
    }

    public string EnsureInitialized()
    {
        PrepareOwnedDirectory(DataRoot);
        if (File.Exists(Path.Combine(DataDirectory, "PG_VERSION")) && File.Exists(PasswordFile))
        {
            AllowServiceUserBySocket();
            return File.ReadAllText(PasswordFile).Trim();
        }

        if (Directory.Exists(DataDirectory))
        {
            Directory.Delete(DataDirectory, recursive: true); // a half-made cluster from an interrupted initdb
        }

        var password = RandomNumberGenerator.GetString("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", 32);
        File.WriteAllText(PasswordFile, password);
        OwnerOnly.File(PasswordFile);
        Chown(PasswordFile);

        RunAsServiceUser(Path.Combine(BinDirectory, "initdb"),
        [
            "--pgdata", DataDirectory,
            "--username", SuperUser,
            "--pwfile", PasswordFile,
            "--auth-host", "scram-sha-256",
            "--auth-local", "scram-sha-256",
            "--encoding", "UTF8",
            "--no-locale",
            "--no-sync",
        ], TimeSpan.FromMinutes(2));
        AllowServiceUserBySocket();
        return password;
    }

    /// <summary>The socket folder when the server has one (pgBackRest talks to the server through it).</summary>
    public string SocketDirectory => Path.Combine(DataRoot, "socket");

    /// <summary>
    /// The <c>postgres</c> OS user (pgBackRest, psql in a restore drill) signs in as the superuser over the private Unix
    /// socket with peer authentication, so no password is ever handed to a tool. TCP keeps scram-sha-256.
    /// </summary>
    private void AllowServiceUserBySocket()
    {
        const string rule = "local all postgres peer";
        var hba = Path.Combine(DataDirectory, "pg_hba.conf");
        var lines = File.ReadAllLines(hba);
        if (!lines.Contains(rule))
        {
            // Rules are read top-down; first match wins. Written in place: the file keeps its owner and mode.
            File.WriteAllLines(hba, [rule, .. lines]);
        }
    }

    /// <summary>Arguments for a foreground server listening on loopback TCP only (no Unix socket to clash on).</summary>
    /// <param name="archiving">pgBackRest's archive settings (they name a socket folder of the cluster's own), or none.</param>
    public IReadOnlyList<string> ServerArguments(string port, IReadOnlyList<string>? archiving = null) =>
    [
        "-D", DataDirectory,
        "-p", port,
        "-c", "listen_addresses=127.0.0.1",
        .. archiving is { Count: > 0 } ? archiving : ["-c", "unix_socket_directories="],
        "-c", "max_connections=200",
        "-c", "fsync=off",
    ];

    /// <summary>Wraps a command so it runs as the postgres OS user when we are root.</summary>
    public static (string FileName, IReadOnlyList<string> Arguments) AsServiceUser(string fileName, IEnumerable<string> arguments) =>
        RunningAsRoot
            ? ("setpriv", [$"--reuid={ServiceUser}", $"--regid={ServiceUser}", "--init-groups", fileName, .. arguments])
            : (fileName, arguments.ToList());

    /// <summary>Stops a server left running on this data folder (e.g. by a killed AppHost) so the new one can start.</summary>
    public void StopStaleServer()
    {
        if (!File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            return;
        }
        try
        {
            RunAsServiceUser(Path.Combine(BinDirectory, "pg_ctl"), ["stop", "-D", DataDirectory, "-m", "fast", "-w", "-t", "30"], TimeSpan.FromSeconds(40));
        }
        catch (InvalidOperationException)
        {
            // No server was running: the pid file was stale, and postgres itself ignores stale pid files.
        }
    }

    public void Stop() => StopStaleServer();

    private static string RunAsServiceUser(string fileName, IEnumerable<string> arguments, TimeSpan timeout)
    {
        var (file, args) = AsServiceUser(fileName, arguments);
        return ProcessRunner.Run(file, args, timeout, workingDirectory: "/");
    }

    /// <summary>
    /// Where the cluster of a persistent local run lives: <c>{dataRoot}/postgres</c>, unless the server (run as the
    /// <c>postgres</c> OS user when the AppHost runs as root) cannot reach that folder — a checkout under <c>/root</c> or in
    /// a <c>mktemp -d</c> folder (mode 0700) — in which case a folder of its own under <c>/var/lib/clippybot/</c>, one per
    /// checkout (a hash of its path), owned by that user with mode 0700. Returns the folder and whether it moved.
    /// </summary>
    public static (string Folder, bool Moved) ClusterFolderFor(string dataRoot, string checkout, string stateRoot = "/var/lib/clippybot")
    {
        var inside = Path.Combine(Path.GetFullPath(dataRoot), "postgres");
        if (!RunningAsRoot || ServiceUserCanReach(Path.GetFullPath(dataRoot)))
        {
            return (inside, false);
        }
        var id = Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Path.GetFullPath(checkout))))[..16];
        Directory.CreateDirectory(stateRoot);
        return (Path.Combine(stateRoot, id, "postgres"), true);
    }

    /// <summary>Whether the service user can search every folder on the way to <paramref name="path"/> (its nearest existing ancestor).</summary>
    private static bool ServiceUserCanReach(string path)
    {
        var existing = path;
        while (!Directory.Exists(existing) && Path.GetDirectoryName(existing) is { } parent)
        {
            existing = parent;
        }
        try
        {
            var (file, args) = AsServiceUser("test", ["-x", existing]);
            ProcessRunner.Run(file, args, TimeSpan.FromSeconds(10), workingDirectory: "/");
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>As root the folder must belong to the postgres user, and that user must be able to reach it.</summary>
    private static void PrepareOwnedDirectory(string path)
    {
        Directory.CreateDirectory(path);
        OwnerOnly.Directory(path);
        if (!RunningAsRoot)
        {
            return;
        }
        Chown(path);
        try
        {
            var (file, args) = AsServiceUser("test", ["-w", path, "-a", "-x", path]);
            ProcessRunner.Run(file, args, TimeSpan.FromSeconds(10), workingDirectory: "/");
        }
        catch (InvalidOperationException)
        {
            throw new InfrastructureConfigurationException(
                $"The postgres OS user cannot reach '{path}' (a parent folder is not searchable by it, e.g. /root). " +
                "Set LocalInfrastructure:DataDirectory to a folder outside private home folders, or LocalInfrastructure:Persistent=false for a temp folder.");
        }
    }

    private static void Chown(string path)
    {
        if (RunningAsRoot)
        {
            ProcessRunner.Run("chown", ["-R", $"{ServiceUser}:{ServiceUser}", path], TimeSpan.FromSeconds(30));
        }
    }
}
