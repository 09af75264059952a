namespace ClippyBot.Identity.Apps;

/// <summary>Apps registered at run time: developer pages, RFC 7591/7592, consent, connected apps (docs/apps.md).</summary>
public static class AppsExtensions
{
    public static WebApplicationBuilder AddApps(this WebApplicationBuilder builder)
    {
        builder.Services.AddOptions<AppsOptions>().Bind(builder.Configuration.GetSection(AppsOptions.SectionName))
            .Validate(o => o.SecretRotationGrace >= TimeSpan.Zero && o.SecretRotationGrace <= TimeSpan.FromDays(30), "Apps:SecretRotationGrace is between 0 and 30 days.")
            .Validate(o => o.InitialAccessTokenLifetime >= TimeSpan.FromMinutes(1) && o.InitialAccessTokenLifetime <= TimeSpan.FromDays(30), "Apps:InitialAccessTokenLifetime is between a minute and 30 days.")
            .Validate(o => o.RefusalRetention >= TimeSpan.FromDays(1), "Apps:RefusalRetention is at least a day.")
            .Validate(o => o.MaxAppsPerOwner >= 1 && o.MaxOpenInitialAccessTokens >= 1, "Apps:MaxAppsPerOwner and Apps:MaxOpenInitialAccessTokens are at least 1.")
            .ValidateOnStart();
        builder.Services.AddScoped<AppRegistry>();
        builder.Services.AddSingleton<ClientChanges>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ClientChanges>());
        builder.Services.AddHostedService<ExpiredSecretsSweeper>();
        return builder;
    }

    public static WebApplication MapApps(this WebApplication app)
    {
        app.MapAppRegistration();
        return app;
    }
}

/// <summary>Removes rotated secrets whose grace period has ended (expiry alone already refuses them) and old refusals, hourly.</summary>
internal sealed partial class ExpiredSecretsSweeper(IServiceScopeFactory scopes, TimeProvider time, ILogger<ExpiredSecretsSweeper> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromHours(1), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var registry = scope.ServiceProvider.GetRequiredService<AppRegistry>();
                var removed = await registry.RemoveExpiredSecretsAsync(stoppingToken);
                await registry.RemoveOldRefusalsAsync(stoppingToken);
                if (removed > 0)
                {
                    LogRemoved(removed);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(e.GetType().Name);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Apps: {Count} rotated secret(s) past their grace period removed")]
    private partial void LogRemoved(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Apps: removing expired secrets failed ({Error}); next hour again")]
    private partial void LogFailed(string error);
}
