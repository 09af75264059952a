using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Rig;

/// <summary>
/// Hosts one service in-process against the rig's real PostgreSQL and Redis. <typeparamref name="TEntryPoint"/> is
/// any public type of the service's assembly (its DbContext), since every service's <c>Program</c> shares one name.
/// </summary>
public sealed class ServiceFactory<TEntryPoint>(IReadOnlyDictionary<string, string?> settings, Action<IServiceCollection>? configureServices = null,
    string environment = "Testing")
    : WebApplicationFactory<TEntryPoint>
    where TEntryPoint : class
{
    public IReadOnlyDictionary<string, string?> Settings { get; } = settings;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        // "Testing" is local (plain http allowed, development tooling on); tests of production behaviour pass "Production".
        builder.UseEnvironment(environment);
        // Every service delivers mail to the rig's SMTP server unless a test says otherwise.
        foreach (var (key, value) in TestRig.Smtp.ServiceSettings.Where(s => !Settings.ContainsKey(s.Key)))
        {
            builder.UseSetting(key, value);
        }
        foreach (var (key, value) in Settings)
        {
            builder.UseSetting(key, value);
        }
        if (configureServices is not null)
        {
            builder.ConfigureServices(configureServices);
        }
    }

    /// <summary>
    /// A stopped service's pooled connections would otherwise stay open for Npgsql's idle lifetime (5 minutes): with one
    /// fresh database per service and tests that sign in 30 times at once, they add up past the cluster's max_connections.
    /// (Connections in use elsewhere are not affected: they close when returned.)
    /// </summary>
    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        Npgsql.NpgsqlConnection.ClearAllPools();
        GC.SuppressFinalize(this);
    }
}

public static class ServiceFactory
{
    /// <summary>Databases a service owns beside its main one: the Api keeps people's keys apart from apidb (docs/privacy.md).</summary>
    private static readonly Dictionary<string, string[]> CompanionDatabases = new(StringComparer.Ordinal)
    {
        ["apidb"] = ["subjectkeysdb"],
    };

    /// <summary>A factory whose service owns a fresh, empty database of its own.</summary>
    public static Task<ServiceFactory<TEntryPoint>> WithFreshDatabaseAsync<TEntryPoint>(
        string connectionName, IReadOnlyDictionary<string, string?>? extra = null,
        Action<IServiceCollection>? configureServices = null, CancellationToken ct = default)
        where TEntryPoint : class =>
        WithFreshDatabaseAsync<TEntryPoint>("Testing", connectionName, extra, configureServices, ct);

    /// <summary>A factory in <paramref name="environment"/> whose service owns a fresh, empty database of its own.</summary>
    public static async Task<ServiceFactory<TEntryPoint>> WithFreshDatabaseAsync<TEntryPoint>(
        string environment, string connectionName, IReadOnlyDictionary<string, string?>? extra,
        Action<IServiceCollection>? configureServices, CancellationToken ct)
        where TEntryPoint : class
    {
        var settings = new Dictionary<string, string?>
        {
            [$"ConnectionStrings:{connectionName}"] = await TestRig.Postgres.CreateDatabaseAsync(connectionName, ct),
            ["ConnectionStrings:cache"] = TestRig.Redis.ConnectionString,
        };
        foreach (var companion in CompanionDatabases.GetValueOrDefault(connectionName, []))
        {
            settings[$"ConnectionStrings:{companion}"] = await TestRig.Postgres.CreateDatabaseAsync(companion, ct);
        }

        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }
        return new ServiceFactory<TEntryPoint>(settings, configureServices, environment);
    }
}
