using System.Globalization;

namespace ClippyBot.Backup.PointInTime;

/// <summary>
/// A cluster restored by pgBackRest, started to prove it works: on a private Unix socket only (no TCP port to clash with
/// the live cluster), without archiving and without hot standby (so settings lower than the live server's, such as
/// max_connections, cannot stop recovery; it accepts connections once recovery has ended), queried with psql as the <c>postgres</c> OS user (peer authentication).
/// </summary>
public sealed class RestoredCluster : IAsyncDisposable
{
    private const int SocketPort = 5432;
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(10);
    private readonly string _bin;
    private readonly string _socket;
    private bool _running;

    private RestoredCluster(string dataDirectory, string bin, string socket)
    {
        DataDirectory = dataDirectory;
        _bin = bin;
        _socket = socket;
    }

    public string DataDirectory { get; }

    /// <summary>The private socket folder the server listens in (no TCP): clients connect with it as host and <see cref="Port"/>.</summary>
    public string SocketDirectory => _socket;

    public static int Port => SocketPort;

    /// <summary>Starts the restored cluster and waits until recovery has ended and it accepts writes.</summary>
    public static async Task<RestoredCluster> StartAsync(string dataDirectory, CancellationToken ct)
    {
        var bin = ServerBinariesFor(dataDirectory);
        // pg_ctl runs the server through a shell: every path it is given must be one a shell reads literally.
        dataDirectory = PgBackRest.ShellSafe(Path.GetFullPath(dataDirectory).TrimEnd('/'));
        var socket = dataDirectory + ".socket";
        if (Directory.Exists(socket) || File.Exists(socket) || new FileInfo(socket).LinkTarget is not null)
        {
            throw new BackupException($"'{socket}' already exists: remove it, or restore into another folder.");
        }
        ServiceUser.Own(socket);
        var cluster = new RestoredCluster(dataDirectory, bin, socket);
        var log = Path.Combine(socket, "server.log");
        try
        {
            await ServiceUser.RunAsync(Path.Combine(bin, "pg_ctl"),
            [
                "start", "-w", "-t", ((int)StartTimeout.TotalSeconds).ToString(CultureInfo.InvariantCulture), "-D", dataDirectory, "-l", log,
                "-o", $"-p {SocketPort} -c listen_addresses='' -c unix_socket_directories='{socket}' -c archive_mode=off -c hot_standby=off",
            ], StartTimeout + TimeSpan.FromSeconds(30), ct);
        }
        catch (BackupException e)
        {
            // pg_ctl gives up waiting but leaves a slow server running: stop it before the caller removes its folder.
            cluster._running = true;
            await cluster.StopQuietlyAsync();
            throw Failed(dataDirectory, log, e);
        }
        cluster._running = true;
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (await cluster.QueryAsync("postgres", "SELECT pg_is_in_recovery()", ct) == "f")
                {
                    break;
                }
            }
            catch (BackupException e) when (e.Message.Contains("not accepting connections", StringComparison.Ordinal)
                || e.Message.Contains("starting up", StringComparison.Ordinal))
            {
                // Still replaying WAL (no hot standby): it answers once recovery has ended.
            }
            catch (BackupException e)
            {
                await cluster.StopQuietlyAsync();
                throw Failed(dataDirectory, log, e);
            }
            if (waited.Elapsed > StartTimeout)
            {
                await cluster.StopQuietlyAsync();
                throw new BackupException($"The restored cluster in '{dataDirectory}' was still recovering after {StartTimeout.TotalMinutes:0} minutes.");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(200), ct);
        }
        return cluster;
    }

    /// <summary>One SQL statement; its output unaligned, one row per line.</summary>
    public Task<string> QueryAsync(string database, string sql, CancellationToken ct) => Psql(_bin, _socket, SocketPort, database, sql, ct);

    /// <summary>One SQL statement through a cluster's Unix socket as the <c>postgres</c> OS user (peer authentication).</summary>
    internal static Task<string> Psql(string bin, string socket, int port, string database, string sql, CancellationToken ct) =>
        ServiceUser.RunAsync(Path.Combine(bin, "psql"),
            ["-h", socket, "-p", port.ToString(CultureInfo.InvariantCulture), "-U", ServiceUser.Name, "-d", database, "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql],
            TimeSpan.FromMinutes(10), ct);

    /// <summary>The databases a service created (not PostgreSQL's own).</summary>
    public async Task<IReadOnlyList<string>> DatabasesAsync(CancellationToken ct) =>
        (await QueryAsync("postgres", "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres' ORDER BY 1", ct))
            .Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Stops the server and removes its socket folder (with the server's log), so the cluster can be started again.</summary>
    public async Task StopAsync()
    {
        await StopServerAsync();
        if (Directory.Exists(_socket))
        {
            Directory.Delete(_socket, recursive: true);
        }
    }

    private async Task StopServerAsync()
    {
        if (_running)
        {
            _running = false;
            await ServiceUser.RunAsync(Path.Combine(_bin, "pg_ctl"), ["stop", "-D", DataDirectory, "-m", "fast", "-w"], TimeSpan.FromMinutes(2), CancellationToken.None);
        }
    }

    public async ValueTask DisposeAsync() => await StopAsync();

    private async Task StopQuietlyAsync()
    {
        try
        {
            // The log stays: the caller quotes it.
            await StopServerAsync();
        }
        catch (BackupException)
        {
            // It stopped by itself (recovery failed); the caller reports why.
        }
    }

    /// <summary>The server's own last words say why (a missing WAL segment, a target past the archive's end…).</summary>
    private static BackupException Failed(string dataDirectory, string log, Exception inner)
    {
        var lines = File.Exists(log) ? File.ReadAllLines(log) : [];
        var fatal = lines.Where(l => l.Contains("FATAL:", StringComparison.Ordinal) || l.Contains("ERROR:", StringComparison.Ordinal)).ToList();
        return new BackupException($"The restored cluster in '{dataDirectory}' did not start: {string.Join(" | ", (fatal.Count > 0 ? fatal : [.. lines]).TakeLast(4))}", inner);
    }

    /// <summary>The server binaries of the cluster's own major version (Debian keeps one folder per version).</summary>
    internal static string ServerBinariesFor(string dataDirectory)
    {
        var versionFile = Path.Combine(dataDirectory, "PG_VERSION");
        var version = File.Exists(versionFile) ? File.ReadAllText(versionFile).Trim() : "";
        var candidates = new[] { $"/usr/lib/postgresql/{version}/bin" }
            .Concat((Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries));
        return candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, "pg_ctl")) && File.Exists(Path.Combine(d, "psql")))
            ?? throw new BackupException($"PostgreSQL {version} server binaries (pg_ctl, psql) were not found.");
    }
}
