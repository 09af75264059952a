using ClippyBot.Contracts;
using System.Globalization;
using System.Security.Claims;
using System.Threading.RateLimiting;
using ClippyBot.Api.ApiKeys;
using StackExchange.Redis;
using ClippyBot.ServiceDefaults.Redis;

namespace ClippyBot.Api.RateLimiting;

/// <summary>Configuration section <c>RateLimits</c>: one fixed window per policy, counted in Redis across replicas.</summary>
public sealed class RateLimitsOptions
{
    public const string SectionName = "RateLimits";

    /// <summary>Prefix of the counters' Redis keys (one deployment, one prefix).</summary>
    public string KeyPrefix { get; set; } = "clippybot:rl";

    /// <summary>Unauthenticated requests, per client IP.</summary>
    public RateLimitPolicy Anonymous { get; set; } = new() { PermitLimit = 60 };

    /// <summary>Authenticated requests, per user or per API key.</summary>
    public RateLimitPolicy Authenticated { get; set; } = new() { PermitLimit = 600 };

    /// <summary>Expensive or sensitive endpoints (creating keys and workspaces, invitations, deletion), per caller, on top.</summary>
    public RateLimitPolicy Sensitive { get; set; } = new() { PermitLimit = 20 };
}

/// <summary>
/// Seed §4.1: limits per IP for anonymous traffic and per user / per API key for authenticated traffic, plus a stricter
/// policy for sensitive endpoints. Counters live in Redis, so the limit holds for the service as a whole, not per replica;
/// most requests do not wait for Redis (<see cref="SharedFixedWindowLimiter"/>). Refusals are 429 problem details with
/// <c>Retry-After</c>.
/// </summary>
public static class RateLimitingExtensions
{
    public const string SensitivePolicy = "sensitive";

    public static IHostApplicationBuilder AddApiRateLimits(this IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(RateLimitsOptions.SectionName).Get<RateLimitsOptions>() ?? new RateLimitsOptions();
        foreach (var (name, policy) in new[] { ("Anonymous", options.Anonymous), ("Authenticated", options.Authenticated), ("Sensitive", options.Sensitive) })
        {
            if (policy.PermitLimit < 1 || policy.Window <= TimeSpan.Zero)
            {
                throw new InvalidOperationException($"RateLimits:{name} needs PermitLimit ≥ 1 and a positive Window.");
            }
        }

        builder.Services.AddRateLimiter(limiter =>
        {
            limiter.GlobalLimiter = new OncePerRequest(PartitionedRateLimiter.Create<HttpContext, string>(http =>
            {
                // Probes from the orchestrator are not traffic.
                if (http.Request.Path.StartsWithSegments(ServiceDefaultsPaths.Health) || http.Request.Path.StartsWithSegments(ServiceDefaultsPaths.Alive))
                {
                    return RateLimitPartition.GetNoLimiter("probe");
                }
                var (caller, authenticated) = Caller(http);
                return Partition(http, $"{options.KeyPrefix}:global:{caller}", authenticated ? options.Authenticated : options.Anonymous);
            }));
            limiter.AddPolicy(SensitivePolicy, http => Partition(http, $"{options.KeyPrefix}:sensitive:{Caller(http).Key}", options.Sensitive, decidesWithoutWaiting: false));
            limiter.OnRejected = (context, _) => RateLimitRefusal.WriteAsync(context,
                context.HttpContext.GetEndpoint()?.Metadata.GetMetadata<Microsoft.AspNetCore.RateLimiting.EnableRateLimitingAttribute>()?.PolicyName ?? "global");
        });
        return builder;
    }

    public static WebApplication UseApiRateLimits(this WebApplication app)
    {
        app.UseRateLimiter();
        return app;
    }

    private static RateLimitPartition<string> Partition(HttpContext http, string key, RateLimitPolicy policy, bool decidesWithoutWaiting = true) =>
        RateLimitPartition.Get(key, k => new SharedFixedWindowLimiter(k, policy,
            http.RequestServices.GetRequiredService<IConnectionMultiplexer>(), http.RequestServices.GetRequiredService<TimeProvider>(), decidesWithoutWaiting));

    private static (string Key, bool Authenticated) Caller(HttpContext http)
    {
        var user = http.User;
        if (user.Identity?.IsAuthenticated == true)
        {
            return user.IsApiKey()
                ? ($"key:{user.FindFirstValue(ApiKeyClaims.KeyId)}", true)
                : ($"user:{user.FindFirstValue("sub")}", true);
        }
        return ($"ip:{http.Connection.RemoteIpAddress}", false);
    }
}

/// <summary>The service-defaults probe paths, named once for the Api.</summary>
internal static class ServiceDefaultsPaths
{
    public const string Health = Microsoft.Extensions.Hosting.ServiceDefaultsExtensions.HealthPath;
    public const string Alive = Microsoft.Extensions.Hosting.ServiceDefaultsExtensions.AlivePath;
}
