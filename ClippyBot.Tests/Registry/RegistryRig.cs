using Microsoft.Extensions.DependencyInjection;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Registry.Data;
using ClippyBot.Tests.Rig;
using ClippyBot.Tuf;

namespace ClippyBot.Tests.Registry;

/// <summary>A registry in-process on its own fresh registrydb, with the AppHost's development keys made in a temp folder.</summary>
public sealed class RegistryRig : IAsyncDisposable
{
    private RegistryRig(ServiceFactory<RegistryDbContext> factory, RegistryKeys keys, string folder) => (Factory, Keys, Folder) = (factory, keys, folder);

    public ServiceFactory<RegistryDbContext> Factory { get; }
    public RegistryKeys Keys { get; }
    /// <summary>The key folder; <c>bundles/</c> in it is the first-party bundles folder.</summary>
    public string Folder { get; }
    public string BundlesFolder => Path.Combine(Folder, "bundles");
    public byte[] FirstPartyPrivateKey => Convert.FromBase64String(Keys.FirstPartyPrivateKey);
    public byte[] PinnedRoot => Convert.FromBase64String(Keys.PinnedRoot);

    /// <summary>Starts a registry; <paramref name="bundles"/> (file name → signed bundle) are the first-party bundles it finds at start.</summary>
    public static async Task<RegistryRig> StartAsync(CancellationToken ct, Func<RegistryKeys, IReadOnlyDictionary<string, byte[]>>? bundles = null,
        IReadOnlyDictionary<string, string?>? settings = null, TimeProvider? time = null, Action<IServiceCollection>? services = null, int? kestrelPort = null)
    {
        var folder = Directory.CreateTempSubdirectory("clippybot-registry-").FullName;
        var keys = RegistryKeyCeremony.EnsureDevelopmentKeys(folder, time ?? TimeProvider.System);
        Directory.CreateDirectory(Path.Combine(folder, "bundles"));
        foreach (var (name, bundle) in bundles?.Invoke(keys) ?? new Dictionary<string, byte[]>())
        {
            await File.WriteAllBytesAsync(Path.Combine(folder, "bundles", name), bundle, ct);
        }
        var factory = await ServiceFactory.WithFreshDatabaseAsync<RegistryDbContext>("registrydb", Settings(keys, folder, settings), ct: ct,
            configureServices: collection =>
            {
                if (time is not null)
                {
                    collection.AddSingleton<TimeProvider>(time);
                }
                services?.Invoke(collection);
            });
        if (kestrelPort is { } port)
        {
            // On a real socket, for a real browser.
            factory.UseKestrel(port);
            factory.StartServer();
        }
        using var probe = kestrelPort is { } listening ? new HttpClient { BaseAddress = new Uri($"http://localhost:{listening}") } : factory.CreateClient();
        // Healthy once migrated; the first metadata follows at the refresher's first tick.
        await Poll.UntilAsync(async () => (await probe.GetAsync(new Uri("/health", UriKind.Relative), ct)).IsSuccessStatusCode
            && (await probe.GetAsync(new Uri("/tuf/timestamp.json", UriKind.Relative), ct)).IsSuccessStatusCode,
            TimeSpan.FromSeconds(60), "registry healthy with its first metadata", ct);
        return new RegistryRig(factory, keys, folder);
    }

    /// <summary>Another replica on the same database.</summary>
    public ServiceFactory<RegistryDbContext> Replica() => new(Factory.Settings);

    public static Dictionary<string, string?> Settings(RegistryKeys keys, string folder, IReadOnlyDictionary<string, string?>? extra = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Registry:TargetsKey"] = keys.TargetsSeed,
            ["Registry:SnapshotKey"] = keys.SnapshotSeed,
            ["Registry:TimestampKey"] = keys.TimestampSeed,
            ["Registry:FirstParty:PublicKey"] = keys.FirstPartyPublicKey,
            ["Registry:FirstParty:BundlesFolder"] = Path.Combine(folder, "bundles"),
            ["Registry:FirstParty:AutoApprove"] = "true",
            ["Registry:RefreshCheckInterval"] = "00:00:00.200",
            ["Registry:KeyEncryptionKey"] = RandomSecret(),
            ["Registry:AuditChainKey"] = RandomSecret(),
            ["Registry:SignIn:ClientSecret"] = RandomSecret(),
            // Every rig counts on its own keys of the shared cache (tests' clients all come from one address).
            ["Registry:RateLimits:KeyPrefix"] = "clippybot:registry:rl:" + Guid.NewGuid().ToString("N"),
        };
        for (var i = 0; i < keys.Roots.Count; i++)
        {
            settings[$"Registry:Roots:{i}"] = keys.Roots[i];
        }
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }
        return settings;
    }

    private static string RandomSecret() => Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(36));

    /// <summary>A TUF client of this registry over HTTP, trusting its pinned root, remembering into <paramref name="store"/>.</summary>
    public TufUpdater Client(ITufTrustStore store, HttpClient http, TimeProvider? time = null) =>
        new(new HttpTufRemote(http, new Uri(http.BaseAddress!, "/tuf/")), store, PinnedRoot, time ?? TimeProvider.System);

    public async ValueTask DisposeAsync()
    {
        await Factory.DisposeAsync();
        Directory.Delete(Folder, recursive: true);
    }
}
