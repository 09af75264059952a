using System.Diagnostics;
using System.Globalization;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Backup.PointInTime;
using Npgsql;

namespace ClippyBot.Bench;

/// <summary>
/// Point-in-time recovery's figures (issue #19), on a throwaway cluster archiving into two repositories as the AppHost's
/// does: WAL archive lag and machine CPU at a steady write rate (and the same load without archiving, for the cost), RPO
/// (a disaster at the end of the load: the newest commit a restore of repository 1 holds), and RTO for a database of a
/// given size (restore + start, measured by a drill).
/// </summary>
public static class PitrBench
{
    public static async Task<int> RunAsync(int writesPerSecond, int seconds, int databaseMiB)
    {
        var ct = CancellationToken.None;
        var root = Path.Combine(Path.GetTempPath(), "clippybot-pitr-bench-" + Guid.NewGuid().ToString("N")[..8]);
        var cluster = PostgresCluster.Create(root, PostgresCluster.LocateBinaries(configured: null));
        var password = cluster.EnsureInitialized();
        var port = LocalInfrastructureOptions.FreePort();
        var pgBackRest = PgBackRest.Configure(new PgBackRestLayout(Path.Combine(root, "pgbackrest"),
            [Path.Combine(root, "repo1"), Path.Combine(root, "repo2")], cluster.DataDirectory, cluster.SocketDirectory, port, TimeSpan.FromDays(30)));
        var connectionString = $"Host=127.0.0.1;Port={port};Username=postgres;Password={password};Database=postgres;Maximum Pool Size=8";
        try
        {
            // The same load without archiving first: the difference in machine CPU is what archiving costs.
            Process server;
            double cpuWithout;
            using (server = StartServer(cluster, port, archiving: null))
            {
                await WaitReadyAsync(connectionString, ct);
                await ExecuteAsync(connectionString, "CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp(), payload text NOT NULL)", ct);
                (cpuWithout, _) = await LoadAsync(connectionString, writesPerSecond, seconds, sampleArchiver: false, ct);
                await StopAsync(cluster, server);
            }
            using (server = StartServer(cluster, port, pgBackRest.ArchiveSettings(cluster.SocketDirectory)))
            {
                await WaitReadyAsync(connectionString, ct);
                await pgBackRest.EnsureStanzaAsync(ct);
                var clock = Stopwatch.StartNew();
                await pgBackRest.BackupAsync("full", 1, ct);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"first full backup (small cluster) {clock.Elapsed.TotalSeconds:0.0} s"));
                var (cpuWith, lag) = await LoadAsync(connectionString, writesPerSecond, seconds, sampleArchiver: true, ct);
                // The disaster: the server dies at once (what its archiver had not handed over is lost).
                var disaster = DateTimeOffset.UtcNow;
                server.Kill(entireProcessTree: true);
                await server.WaitForExitAsync(ct);
                NpgsqlConnection.ClearAllPools();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"steady writes {writesPerSecond}/s for {seconds} s: machine CPU {cpuWithout:0.0} % without archiving, {cpuWith:0.0} % with (cost {cpuWith - cpuWithout:0.0} points of 200)"));
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"archive lag: max {lag.Max(l => l.Seconds):0} s since the last archived segment; WAL written but not yet archived: max {lag.Max(l => l.Bytes) / 1024} KiB, mean {lag.Average(l => l.Bytes) / 1024:0} KiB"));

                // A disaster now: what repository 1 can give back without the live cluster.
                var into = Path.Combine(root, "rpo");
                Directory.CreateDirectory(into);
                ClippyBot.Backup.PointInTime.ServiceUser.Own(into);
                await pgBackRest.RestoreAsync(into, 1, target: null, ct);
                await using (var restored = await RestoredCluster.StartAsync(into, ct))
                {
                    var newest = double.Parse(await restored.QueryAsync("postgres", "SELECT extract(epoch FROM max(at)) FROM events", ct), CultureInfo.InvariantCulture);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"RPO at the end of the load: {(disaster - DateTimeOffset.FromUnixTimeMilliseconds((long)(newest * 1000))).TotalSeconds:0.0} s (newest restored commit against the moment of the disaster)"));
                }

            }
            using (server = StartServer(cluster, port, pgBackRest.ArchiveSettings(cluster.SocketDirectory)))
            {
                // RTO for a database of the given size: fill, back up, drill.
                await WaitReadyAsync(connectionString, ct);
                var clock = Stopwatch.StartNew();
                await ExecuteAsync(connectionString, string.Create(CultureInfo.InvariantCulture,
                    $"CREATE TABLE bulk AS SELECT g AS id, repeat(md5(g::text), 30) AS payload FROM generate_series(1, {databaseMiB * 1024L * 1024 / 1000}) g"), ct);
                var size = await ScalarAsync(connectionString, "SELECT pg_database_size('postgres') / 1048576", ct);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"filled {size} MiB in {clock.Elapsed.TotalSeconds:0} s"));
                clock.Restart();
                await pgBackRest.BackupAsync("full", 1, ct);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"full backup of {size} MiB: {clock.Elapsed.TotalSeconds:0.0} s"));
                var drill = await Recovery.DrillAsync(pgBackRest, 1, [], TimeProvider.System, ct);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"RTO for {size} MiB (restore + start): {drill.RecoveryTime.TotalSeconds:0.0} s"));
                await StopAsync(cluster, server);
            }
            return 0;
        }
        finally
        {
            NpgsqlConnection.ClearAllPools();
            Directory.Delete(root, recursive: true);
        }
    }

    /// <summary>Inserts at a fixed rate; returns the machine's CPU use (% of one core, summed over cores) and archiver samples.</summary>
    private static async Task<(double Cpu, List<(double Seconds, long Bytes)> Lag)> LoadAsync(
        string connectionString, int writesPerSecond, int seconds, bool sampleArchiver, CancellationToken ct)
    {
        var lag = new List<(double, long)>();
        var (busyBefore, totalBefore) = MachineCpu();
        var clock = Stopwatch.StartNew();
        var payload = new string('x', 200);
        var sent = 0L;
        var writers = new List<Task>();
        var nextSample = TimeSpan.FromSeconds(1);
        while (clock.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            var due = (long)(clock.Elapsed.TotalSeconds * writesPerSecond);
            for (; sent < due; sent++)
            {
                writers.Add(ExecuteAsync(connectionString, $"INSERT INTO events (payload) VALUES ('{payload}')", ct));
            }
            writers.RemoveAll(t => t.IsCompletedSuccessfully);
            if (sampleArchiver && clock.Elapsed >= nextSample)
            {
                nextSample += TimeSpan.FromSeconds(1);
                lag.Add(await ArchiverLagAsync(connectionString, ct));
            }
            await Task.Delay(5, ct);
        }
        await Task.WhenAll(writers);
        var (busyAfter, totalAfter) = MachineCpu();
        return (100.0 * Environment.ProcessorCount * (busyAfter - busyBefore) / (totalAfter - totalBefore), lag);
    }

    private static async Task<(double Seconds, long Bytes)> ArchiverLagAsync(string connectionString, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("""
            SELECT COALESCE(extract(epoch FROM now() - last_archived_time), 0),
                   COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')
                          - (('x' || substr(last_archived_wal, 9, 8))::bit(32)::bigint * 4294967296
                             + (('x' || substr(last_archived_wal, 17, 8))::bit(32)::bigint + 1) * 16777216), 0)
            FROM pg_stat_archiver
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (Convert.ToDouble(reader.GetValue(0), CultureInfo.InvariantCulture), (long)Convert.ToDecimal(reader.GetValue(1), CultureInfo.InvariantCulture));
    }

    /// <summary>Busy and total jiffies of the whole machine (/proc/stat): archiving's cost includes pgBackRest's own processes.</summary>
    private static (long Busy, long Total) MachineCpu()
    {
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(long.Parse).ToArray();
        var idle = fields[3] + fields[4];
        var total = fields.Take(8).Sum();
        return (total - idle, total);
    }

    private static Process StartServer(PostgresCluster cluster, int port, IReadOnlyList<string>? archiving)
    {
        var (file, args) = PostgresCluster.AsServiceUser(cluster.PostgresExecutable, cluster.ServerArguments(port.ToString(CultureInfo.InvariantCulture), archiving));
        var server = Process.Start(new ProcessStartInfo(file, args) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" })!;
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        return server;
    }

    private static async Task StopAsync(PostgresCluster cluster, Process server)
    {
        NpgsqlConnection.ClearAllPools();
        cluster.Stop();
        await server.WaitForExitAsync();
    }

    private static async Task WaitReadyAsync(string connectionString, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await ExecuteAsync(connectionString, "SELECT 1", ct);
                return;
            }
            catch (NpgsqlException) when (clock.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(200, ct);
            }
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 600 };
        await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<long> ScalarAsync(string connectionString, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToInt64(await command.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }
}
