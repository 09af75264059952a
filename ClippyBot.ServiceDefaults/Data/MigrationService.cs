using ClippyBot.Contracts;
using System.Diagnostics;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClippyBot.ServiceDefaults.Data;

public static class MigrationTelemetry
{
    public const string SourceName = "ClippyBot.Migrations";
    internal static readonly ActivitySource Source = new(SourceName);
}

/// <summary>Whether this process has brought <typeparamref name="TContext"/>'s schema up to date.</summary>
public sealed class MigrationStatus<TContext> where TContext : DbContext
{
    private readonly TaskCompletionSource _completed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool Completed => _completed.Task.IsCompleted;

    /// <summary>Completes once the schema is current; start-up work that needs the schema awaits it.</summary>
    public Task WhenCompleted(CancellationToken ct) => _completed.Task.WaitAsync(ct);

    internal void MarkCompleted() => _completed.TrySetResult();
}

/// <summary>One database of the service, for the migrator (<see cref="MigrationMode.Only"/>).</summary>
internal interface IMigrationTarget
{
    Task<int> MigrateAsync(IServiceProvider services, CancellationToken ct);
}

internal sealed class MigrationTarget<TContext> : IMigrationTarget where TContext : DbContext
{
    public async Task<int> MigrateAsync(IServiceProvider services, CancellationToken ct)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var pending = (await PendingMigrations.ListAsync(db, ct)).Count;
        // The history table first: EF reads it before creating it on a fresh database, and that failed read is logged as an
        // error on a healthy first start.
        await Microsoft.EntityFrameworkCore.Infrastructure.AccessorExtensions.GetService<Microsoft.EntityFrameworkCore.Migrations.IHistoryRepository>(db).CreateIfNotExistsAsync(ct);
        await db.Database.MigrateAsync(ct);
        return pending;
    }
}

public static class PendingMigrations
{
    /// <summary>
    /// The migrations not yet applied. Asks whether the history table exists first: on a fresh database EF's own query
    /// would fail and leave an ERROR in PostgreSQL's log and an error entry in the service's, on a healthy first start.
    /// (EF's default history table name; no context here changes it.)
    /// </summary>
    public static async Task<IReadOnlyList<string>> ListAsync(DbContext db, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(db);
        var history = Microsoft.EntityFrameworkCore.Infrastructure.AccessorExtensions.GetService<Microsoft.EntityFrameworkCore.Migrations.IHistoryRepository>(db);
        // Asked of the catalogue: the provider's own existence check is a query that fails (and logs an error) when absent.
        var exists = await db.Database.SqlQuery<bool>($"SELECT to_regclass('\"__EFMigrationsHistory\"') IS NOT NULL AS \"Value\"").SingleAsync(ct);
        var applied = exists
            ? (await history.GetAppliedMigrationsAsync(ct)).Select(m => m.MigrationId).ToHashSet(StringComparer.Ordinal)
            : [];
        return [.. db.Database.GetMigrations().Where(m => !applied.Contains(m))];
    }
}

/// <summary>
/// Applies pending migrations in the background (or, under <see cref="MigrationMode.Await"/>, waits for the migrator to
/// have applied them), retrying with capped exponential back-off while the database is unreachable, so a service
/// started before its database recovers by itself instead of crash-looping. EF Core takes a database lock while
/// migrating, so replicas starting together do not race.
/// </summary>
internal sealed partial class MigrationService<TContext>(
    IServiceProvider services,
    MigrationStatus<TContext> status,
    TimeProvider time,
    Microsoft.Extensions.Configuration.IConfiguration configuration,
    ILogger<MigrationService<TContext>> logger) : BackgroundService where TContext : DbContext
{
    private static readonly TimeSpan MaxDelay = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Where a migrator ran first (Await), the schema is checked once before the server listens: the readiness probe that
    /// comes first then finds it current instead of logging an unhealthy start. Retries stay in the background.
    /// </summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        if (DataExtensions.MigrationModeOf(configuration) == MigrationMode.Await)
        {
            try
            {
                await using var scope = services.CreateAsyncScope();
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                if ((await PendingMigrations.ListAsync(scope.ServiceProvider.GetRequiredService<TContext>(), timeout.Token)).Count == 0)
                {
                    status.MarkCompleted();
                    LogMigrated(typeof(TContext).Name, 0, 0);
                    return;
                }
            }
#pragma warning disable CA1031 // Whatever went wrong, the background loop below retries and logs it.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        }
        await base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var await_ = DataExtensions.MigrationModeOf(configuration) == MigrationMode.Await;
        var delay = TimeSpan.FromMilliseconds(250);
        for (var attempt = 1; ; attempt++)
        {
            using var activity = MigrationTelemetry.Source.StartActivity($"Migrate {typeof(TContext).Name}");
            try
            {
                await using var scope = services.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<TContext>();
                var pending = await PendingMigrations.ListAsync(db, stoppingToken);
                if (await_ && pending.Count > 0)
                {
                    throw new InvalidOperationException($"{pending.Count} migration(s) not applied yet; the migrator applies them.");
                }
                if (!await_)
                {
                    await db.Database.MigrateAsync(stoppingToken);
                }
                status.MarkCompleted();
                LogMigrated(typeof(TContext).Name, pending.Count, attempt);
                return;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // Any failure is retried; the service must not die because its database is late.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                activity?.SetStatus(ActivityStatusCode.Error);
                // Only the exception type and its message: Npgsql messages name no credentials.
                LogRetry(typeof(TContext).Name, attempt, ex.GetType().Name, ex.Message, delay.TotalSeconds);
            }

            try
            {
                await Task.Delay(delay, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxDelay.Ticks));
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Schema of {Context} is current ({Applied} migrations applied, attempt {Attempt})")]
    private partial void LogMigrated(string context, int applied, int attempt);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Migrating {Context} failed (attempt {Attempt}): {ErrorType}: {Error}; retrying in {DelaySeconds} s")]
    private partial void LogRetry(string context, int attempt, string errorType, string error, double delaySeconds);
}

internal sealed class MigrationHealthCheck<TContext>(MigrationStatus<TContext> status) : IHealthCheck where TContext : DbContext
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(status.Completed
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy("Schema migration has not completed yet."));
}
