using ClippyBot.Contracts;
using ClippyBot.ServiceDefaults.Data;
using ClippyBot.ServiceDefaults.Health;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.Extensions.Hosting;

public static class DataExtensions
{
    /// <summary>The Redis-protocol resource every service shares (Redis or Garnet; the service cannot tell).</summary>
    public const string CacheConnectionName = "cache";

    /// <summary>
    /// Registers the service's own PostgreSQL database (pooled DbContext, retries, health check, tracing) and applies its
    /// EF Core migrations at start-up. Readiness stays unhealthy until the schema is current.
    /// </summary>
    public static IHostApplicationBuilder AddServiceDatabase<TContext>(this IHostApplicationBuilder builder, string connectionName)
        where TContext : DbContext
    {
        builder.AddNpgsqlDbContext<TContext>(connectionName, settings =>
        {
            settings.DisableHealthChecks = true;
            settings.ConnectionString = WithServiceConnectionSettings(settings.ConnectionString);
        });

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<MigrationStatus<TContext>>();
        builder.Services.AddSingleton<IMigrationTarget, MigrationTarget<TContext>>();
        builder.Services.AddHostedService<MigrationService<TContext>>();
        builder.Services.AddHealthChecks()
            .AddCheck<DatabaseHealthCheck<TContext>>(connectionName)
            .AddCheck<MigrationHealthCheck<TContext>>($"{connectionName}-migrations");
        return builder;
    }

    public const string MigrationsKey = "Database:Migrations";

    private static readonly Action<Microsoft.Extensions.Logging.ILogger, string, int, Exception?> LogMigrated = Microsoft.Extensions.Logging.LoggerMessage.Define<string, int>(
        Microsoft.Extensions.Logging.LogLevel.Information, new(1, "Migrated"), "{Target}: {Applied} migration(s) applied");

    private static readonly Action<Microsoft.Extensions.Logging.ILogger, string, Exception?> LogRetrying = Microsoft.Extensions.Logging.LoggerMessage.Define<string>(
        Microsoft.Extensions.Logging.LogLevel.Warning, new(2, "MigrationRetry"), "Migrating failed ({Error}); retrying");

    public static MigrationMode MigrationModeOf(Microsoft.Extensions.Configuration.IConfiguration configuration) =>
        Enum.TryParse<MigrationMode>(configuration?[MigrationsKey], ignoreCase: true, out var mode) ? mode : MigrationMode.Apply;

    /// <summary>True in the migrator process (<c>Database:Migrations=Only</c>): it registers the databases, then calls <see cref="MigrateAsync"/>.</summary>
    public static bool RunsMigrationsOnly(this IHostApplicationBuilder builder) =>
        MigrationModeOf(builder?.Configuration ?? throw new ArgumentNullException(nameof(builder))) == MigrationMode.Only;

    /// <summary>
    /// The migrator: applies every registered database's migrations as the connection strings' (owner) role, then
    /// exits (a failure throws: a non-zero exit code). Nothing else of the service starts. Retried briefly while the
    /// database comes up.
    /// </summary>
    public static async Task MigrateAsync(this Microsoft.AspNetCore.Builder.WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        await using var app = builder.Build();
        var logger = app.Services.GetRequiredService<Microsoft.Extensions.Logging.ILoggerFactory>().CreateLogger("ClippyBot.Migrations");
        foreach (var target in app.Services.GetServices<IMigrationTarget>())
        {
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    var applied = await target.MigrateAsync(app.Services, CancellationToken.None);
                    LogMigrated(logger, target.GetType().GenericTypeArguments[0].Name, applied, null);
                    break;
                }
                catch (Npgsql.NpgsqlException e) when (attempt < 10)
                {
                    LogRetrying(logger, e.GetType().Name, null);
                    await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)));
                }
            }
        }
    }

    /// <summary>
    /// Connection settings for short, repeated queries. Pooled connections are not reset with <c>DISCARD ALL</c> when
    /// returned: the services keep no session state (locks are transaction-scoped — the one session-level advisory lock,
    /// the PluginHost's storage lock, is released before the connection goes back — no session <c>SET</c>, temporary
    /// tables or <c>LISTEN</c>), so the reset only made PostgreSQL parse and run a second statement on the first query
    /// of every request. Statements run repeatedly are prepared once per connection (EF Core names its columns, so an
    /// added column does not break a prepared statement). Measured on the login path: PostgreSQL CPU per login
    /// 0.39 → 0.20 ms (bench/run.sh, BENCH=logins).
    /// </summary>
    internal static string? WithServiceConnectionSettings(string? connectionString) =>
        string.IsNullOrEmpty(connectionString)
            ? connectionString
            : new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true, MaxAutoPrepare = 20 }.ConnectionString;

    /// <summary>Registers the shared Redis-protocol connection with its health check and tracing.</summary>
    public static IHostApplicationBuilder AddServiceCache(this IHostApplicationBuilder builder)
    {
        builder.AddRedisClient(CacheConnectionName, settings => settings.DisableHealthChecks = true);
        builder.Services.AddHealthChecks().AddCheck<RedisHealthCheck>(CacheConnectionName);
        return builder;
    }
}
