using System.Diagnostics;
using ClippyBot.AppHost.Infrastructure;
using Npgsql;

namespace ClippyBot.Tests.Rig;

/// <summary>
/// A real PostgreSQL server for the test run: a throwaway cluster in a temp folder on a free loopback port, started the
/// same way the AppHost's local mode starts it. Each test class asks for its own database.
/// </summary>
public sealed class TestPostgres : IAsyncDisposable
{
    private readonly PostgresCluster _cluster;
    private readonly Process _server;
    private int _databaseCounter;

    private TestPostgres(PostgresCluster cluster, Process server, int port, string password)
    {
        _cluster = cluster;
        _server = server;
        Port = port;
        ServerConnectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port,
            Username = PostgresCluster.SuperUser,
            Password = password,
        }.ConnectionString;
    }

    public int Port { get; }

    public string ServerConnectionString { get; }

    public PostgresCluster Cluster => _cluster;

    /// <param name="archiving">Server settings for WAL archiving, given the cluster and its port (see PointInTimeRecoveryTests).</param>
    public static async Task<TestPostgres> StartAsync(CancellationToken ct, Func<PostgresCluster, int, IReadOnlyList<string>>? archiving = null)
    {
        var root = Path.Combine(Path.GetTempPath(), "clippybot-tests-" + Guid.NewGuid().ToString("N")[..12]);
        var cluster = PostgresCluster.Create(root, PostgresCluster.LocateBinaries(configured: null));
        var password = cluster.EnsureInitialized();
        var port = LocalInfrastructureOptions.FreePort();
        var settings = archiving?.Invoke(cluster, port);
        var (file, args) = PostgresCluster.AsServiceUser(cluster.PostgresExecutable, cluster.ServerArguments(port.ToString(System.Globalization.CultureInfo.InvariantCulture), settings));
        var server = Process.Start(new ProcessStartInfo(file, args)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/",
        }) ?? throw new InvalidOperationException("postgres did not start");
        server.OutputDataReceived += (_, _) => { };
        server.ErrorDataReceived += (_, _) => { };
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();

        var postgres = new TestPostgres(cluster, server, port, password);
        await Poll.UntilAsync(async () =>
        {
            if (server.HasExited)
            {
                throw new InvalidOperationException($"postgres exited with {server.ExitCode} during start-up");
            }
            try
            {
                await using var connection = new NpgsqlConnection(postgres.ServerConnectionString + ";Pooling=false");
                await connection.OpenAsync(ct);
                return true;
            }
            catch (NpgsqlException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "PostgreSQL accepting connections", ct);
        return postgres;
    }

    /// <summary>Creates an empty database with a unique name and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix, CancellationToken ct = default)
    {
        var name = $"{prefix}_{Interlocked.Increment(ref _databaseCounter)}_{Guid.NewGuid():N}"[..Math.Min(63, prefix.Length + 20)].ToLowerInvariant();
        await using var connection = new NpgsqlConnection(ServerConnectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
        await command.ExecuteNonQueryAsync(ct);
        return DatabaseConnectionString(name);
    }

    /// <summary>The whole database as <c>pg_dump</c> writes it (plain SQL, schema and data): what a stolen backup would hold.</summary>
    public async Task<string> DumpAsync(string connectionString, CancellationToken ct)
    {
        var settings = new NpgsqlConnectionStringBuilder(connectionString);
        var start = new ProcessStartInfo(Path.Combine(_cluster.BinDirectory, "pg_dump"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["-h", settings.Host!, "-p", settings.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", settings.Username!, "--no-owner", settings.Database!])
        {
            start.ArgumentList.Add(argument);
        }
        start.Environment["PGPASSWORD"] = settings.Password;
        using var process = Process.Start(start) ?? throw new InvalidOperationException("pg_dump did not start");
        var output = process.StandardOutput.ReadToEndAsync(ct);
        var error = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return process.ExitCode == 0 ? await output : throw new InvalidOperationException($"pg_dump failed: {await error}");
    }

    public string DatabaseConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder(ServerConnectionString) { Database = database }.ConnectionString;

    public async ValueTask DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        try
        {
            _cluster.Stop();
        }
        finally
        {
            if (!_server.HasExited)
            {
                _server.Kill(entireProcessTree: true);
            }
            await _server.WaitForExitAsync();
            _server.Dispose();
            try
            {
                Directory.Delete(_cluster.DataRoot, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
