using Microsoft.Extensions.Configuration;
using System.Net;
using System.Net.Sockets;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>Settings of local mode, from the <c>LocalInfrastructure</c> configuration section.</summary>
public sealed class LocalInfrastructureOptions
{
    public const string SectionName = "LocalInfrastructure";

    /// <summary>Keep the PostgreSQL cluster between runs (under <see cref="DataDirectory"/>); false = a throwaway temp folder.</summary>
    public bool Persistent { get; set; } = true;

    /// <summary>Where persistent data lives; empty = <c>.clippybot/</c> at the repository root (git ignores it).</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>Folder with <c>postgres</c>, <c>initdb</c> and <c>pg_ctl</c>; empty = found automatically.</summary>
    public string PostgresBinDirectory { get; set; } = "";

    /// <summary>0 in configuration = a free port picked at start.</summary>
    public int PostgresPort { get; set; }

    /// <summary>The port of the cluster that keeps people's keys (<c>subjectkeysdb</c>); 0 = a free port picked at start.</summary>
    public int KeysPostgresPort { get; set; }

    /// <summary><c>auto</c> (redis-server when on PATH, else Garnet), <c>redis</c> or <c>garnet</c>.</summary>
    public string RedisServer { get; set; } = "auto";

    /// <summary>0 in configuration = a free port picked at start.</summary>
    public int RedisPort { get; set; }

    /// <summary>
    /// Folders of pgBackRest's repositories (<c>LocalInfrastructure:BackupRepositories:0</c>, <c>:1</c>…); empty = two folders
    /// beside the cluster's data (<c>repo1</c>, <c>repo2</c>). In production each is an object store in another region.
    /// </summary>
    public IReadOnlyList<string> BackupRepositories { get; set; } = [];

    /// <summary>How far back point-in-time recovery reaches (the security page promises 30 days).</summary>
    public TimeSpan RecoveryWindow { get; set; } = TimeSpan.FromDays(30);

    public TimeSpan FullBackupInterval { get; set; } = TimeSpan.FromDays(7);

    public TimeSpan DifferentialBackupInterval { get; set; } = TimeSpan.FromDays(1);

    /// <summary>How often a restore drill runs; at most a quarter (the page's floor: "tested quarterly").</summary>
    public TimeSpan RestoreDrillInterval { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// People's keys exist in no copy longer than this after an erasure (docs/privacy.md). Their cluster takes a full
    /// backup every <see cref="KeysFullBackupInterval"/> and keeps the window that leaves: the oldest full backup it must
    /// keep is then never older than this.
    /// </summary>
    public static readonly TimeSpan PeopleKeysLimit = TimeSpan.FromDays(30);

    public static readonly TimeSpan KeysFullBackupInterval = TimeSpan.FromDays(1);

    /// <summary>
    /// The keys cluster's cadence: daily fulls, drills as often as the main cluster's, and a window of at most 28 days —
    /// the newest full older than the window is kept (up to one interval older still), and expiry runs hourly and after
    /// each backup, so the oldest copy of an erased person's key is gone within 28 + 1 days plus an hour.
    /// </summary>
    public BackupCadence KeysCadence => new(
        RecoveryWindow < PeopleKeysLimit - 2 * KeysFullBackupInterval ? RecoveryWindow : PeopleKeysLimit - 2 * KeysFullBackupInterval,
        KeysFullBackupInterval, KeysFullBackupInterval, RestoreDrillInterval);

    public static LocalInfrastructureOptions From(IDistributedApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var section = builder.Configuration.GetSection(SectionName);
        var options = new LocalInfrastructureOptions
        {
            Persistent = ParseBool(section, nameof(Persistent), defaultValue: true),
            DataDirectory = section[nameof(DataDirectory)] ?? "",
            PostgresBinDirectory = section[nameof(PostgresBinDirectory)] ?? "",
            PostgresPort = ParsePort(section, nameof(PostgresPort)),
            KeysPostgresPort = ParsePort(section, nameof(KeysPostgresPort)),
            RedisServer = string.IsNullOrWhiteSpace(section[nameof(RedisServer)]) ? "auto" : section[nameof(RedisServer)]!.Trim(),
            RedisPort = ParsePort(section, nameof(RedisPort)),
            BackupRepositories = section.GetSection(nameof(BackupRepositories)).GetChildren().Select(c => c.Value).OfType<string>()
                .Where(v => v.Length > 0).Select(Path.GetFullPath).ToList(),
            RecoveryWindow = ParseInterval(section, nameof(RecoveryWindow), TimeSpan.FromDays(30), TimeSpan.FromDays(1), TimeSpan.FromDays(3650)),
            FullBackupInterval = ParseInterval(section, nameof(FullBackupInterval), TimeSpan.FromDays(7), TimeSpan.FromMinutes(1), TimeSpan.FromDays(30)),
            DifferentialBackupInterval = ParseInterval(section, nameof(DifferentialBackupInterval), TimeSpan.FromDays(1), TimeSpan.FromMinutes(1), TimeSpan.FromDays(7)),
            RestoreDrillInterval = ParseInterval(section, nameof(RestoreDrillInterval), TimeSpan.FromDays(7), TimeSpan.FromMinutes(1), TimeSpan.FromDays(92)),
        };
        if (options.BackupRepositories.Count is 1 or > 4)
        {
            throw new InfrastructureConfigurationException($"{SectionName}:{nameof(BackupRepositories)} names {options.BackupRepositories.Count} folder(s): give two to four separate locations, or none for the defaults.");
        }
        RequirePortFree(options.PostgresPort, $"{SectionName}:{nameof(PostgresPort)}");
        RequirePortFree(options.RedisPort, $"{SectionName}:{nameof(RedisPort)}");
        RequirePortFree(options.KeysPostgresPort, $"{SectionName}:{nameof(KeysPostgresPort)}");
        // Ports are fixed for the AppHost's lifetime: a server restarted from the dashboard must come back where the
        // services' connection strings point.
        options.PostgresPort = options.PostgresPort == 0 ? FreePort() : options.PostgresPort;
        options.RedisPort = options.RedisPort == 0 ? FreePort(exclude: options.PostgresPort) : options.RedisPort;
        while (options.KeysPostgresPort == 0 || options.KeysPostgresPort == options.RedisPort)
        {
            options.KeysPostgresPort = options.KeysPostgresPort == 0 ? FreePort(exclude: options.PostgresPort) : 0;
        }
        return options;
    }

    private static bool ParseBool(IConfigurationSection section, string key, bool defaultValue)
    {
        var raw = section[key];
        if (string.IsNullOrWhiteSpace(raw))
        {
            return defaultValue;
        }
        return bool.TryParse(raw, out var value)
            ? value
            : throw new InfrastructureConfigurationException($"{SectionName}:{key}='{raw}' is not true or false.");
    }

    /// <summary>A span such as <c>7.00:00:00</c> or <c>00:30:00</c> within bounds; anything else is refused with the key named.</summary>
    private static TimeSpan ParseInterval(IConfigurationSection section, string key, TimeSpan defaultValue, TimeSpan minimum, TimeSpan maximum)
    {
        var raw = section[key];
        if (string.IsNullOrWhiteSpace(raw))
        {
            return defaultValue;
        }
        return TimeSpan.TryParse(raw, System.Globalization.CultureInfo.InvariantCulture, out var value) && value >= minimum && value <= maximum
            ? value
            : throw new InfrastructureConfigurationException($"{SectionName}:{key}='{raw}' is not a span between {minimum} and {maximum} (d.hh:mm:ss).");
    }

    private static int ParsePort(IConfigurationSection section, string key)
    {
        var raw = section[key];
        if (string.IsNullOrWhiteSpace(raw))
        {
            return 0;
        }
        return int.TryParse(raw, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) && port <= 65535
            ? port
            : throw new InfrastructureConfigurationException($"{SectionName}:{key}='{raw}' is not a TCP port. Use 1–65535, or 0 to pick a free one.");
    }

    /// <summary>Resolves the data root, creating it; throwaway roots get a unique temp folder.</summary>
    public string ResolveDataRoot(string appHostDirectory)
    {
        string root;
        if (!Persistent)
        {
            root = Path.Combine(Path.GetTempPath(), "clippybot-" + Guid.NewGuid().ToString("N")[..12]);
        }
        else if (!string.IsNullOrWhiteSpace(DataDirectory))
        {
            root = Path.GetFullPath(DataDirectory);
        }
        else
        {
            root = DefaultDataRoot(appHostDirectory);
        }
        Directory.CreateDirectory(root);
        return root;
    }

    /// <summary><c>.clippybot/</c> at the repository root.</summary>
    public static string DefaultDataRoot(string appHostDirectory) => Path.GetFullPath(Path.Combine(appHostDirectory, "..", ".clippybot"));

    /// <summary>A loopback port nothing listens on right now.</summary>
    public static int FreePort(int exclude = 0)
    {
        while (true)
        {
            using var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            if (port != exclude)
            {
                return port;
            }
        }
    }

    private static void RequirePortFree(int port, string key)
    {
        if (port == 0)
        {
            return;
        }
        try
        {
            using var probe = new TcpListener(IPAddress.Loopback, port);
            probe.Start();
            probe.Stop();
        }
        catch (SocketException)
        {
            throw new InfrastructureConfigurationException(
                $"Port {port} ({key}) is already in use. Stop what listens there (`ss -ltnp 'sport = :{port}'` shows it), choose another port, or set {key}=0 to pick a free one.");
        }
    }
}
