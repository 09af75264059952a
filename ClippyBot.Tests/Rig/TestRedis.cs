using System.Globalization;
using System.Security.Cryptography;
using ClippyBot.AppHost.Infrastructure;
using Garnet;

namespace ClippyBot.Tests.Rig;

/// <summary>
/// A real Redis-protocol server for the test run: Microsoft Garnet in this process on a free loopback port, with
/// password authentication and Lua on, as in local mode.
/// </summary>
public sealed class TestRedis : IDisposable
{
    private readonly GarnetServer _server;
    private readonly string _directory;

    private TestRedis(GarnetServer server, string directory, int port, string password)
    {
        _server = server;
        _directory = directory;
        Port = port;
        Password = password;
        ConnectionString = $"127.0.0.1:{port},password={password}";
    }

    public int Port { get; }

    public string ConnectionString { get; }

    public string Password { get; }

    /// <param name="port">A port of an earlier (stopped) instance to start in its place, as a restarted cache would.</param>
    /// <param name="password">Its password, with <paramref name="port"/>.</param>
    public static TestRedis Start(int? port = null, string? password = null)
    {
        port ??= LocalInfrastructureOptions.FreePort();
        password ??= RandomNumberGenerator.GetHexString(32, lowercase: true);
        // Garnet's log/checkpoint folder defaults to the working directory, and its cleanup deletes that folder:
        // give it a private temp folder and clean up ourselves.
        var directory = Directory.CreateTempSubdirectory("clippybot-garnet-").FullName;
        var server = new GarnetServer(
        [
            "--checkpointdir", directory,
            "--bind", "127.0.0.1",
            "--port", port.Value.ToString(CultureInfo.InvariantCulture),
            "--auth", "Password",
            "--password", password,
            "--lua", "true",
            "--memory", "128m",
            "--index", "16m",
            "-q",
        ], loggerFactory: null, cleanupDir: false);
        server.Start();
        return new TestRedis(server, directory, port.Value, password);
    }

    public void Dispose()
    {
        _server.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
