using System.Data.Common;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace ClippyBot.ServiceDefaults.Health;

/// <summary>
/// Readiness probes must answer within a probe's timeout even when a dependency is gone. The stock checks wait for
/// EF Core's retry strategy (about a minute) and Redis's backlog (5 s); these answer from one bounded attempt.
/// </summary>
internal static class HealthCheckLimits
{
    public static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(3);
}

/// <summary>Opens the service's own database connection once, bypassing the retrying execution strategy.</summary>
internal sealed class DatabaseHealthCheck<TContext>(IServiceScopeFactory scopes) : IHealthCheck where TContext : DbContext
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(HealthCheckLimits.AttemptTimeout);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<TContext>();
        var connection = db.Database.GetDbConnection();
        try
        {
            await connection.OpenAsync(timeout.Token);
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT 1";
            await command.ExecuteScalarAsync(timeout.Token);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is DbException or OperationCanceledException or TimeoutException or System.Net.Sockets.SocketException)
        {
            return HealthCheckResult.Unhealthy("Database unreachable.");
        }
        finally
        {
            await connection.CloseAsync();
        }
    }
}

/// <summary>Unhealthy at once while the multiplexer has no connection; otherwise one bounded PING.</summary>
internal sealed class RedisHealthCheck(IConnectionMultiplexer redis) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (!redis.IsConnected)
        {
            return HealthCheckResult.Unhealthy("Redis unreachable.");
        }
        try
        {
            await redis.GetDatabase().PingAsync().WaitAsync(HealthCheckLimits.AttemptTimeout, cancellationToken);
            return HealthCheckResult.Healthy();
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy("Redis unreachable.");
        }
    }
}
