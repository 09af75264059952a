using System.Threading.RateLimiting;
using ClippyBot.ServiceDefaults.Edge;
using ClippyBot.ServiceDefaults.Redis;
using StackExchange.Redis;

namespace ClippyBot.Registry.Web;

/// <summary>Configuration section <c>Registry:RateLimits</c>: fixed windows counted in Redis across replicas.</summary>
public sealed class RegistryRateLimitsOptions
{
    public const string SectionName = "Registry:RateLimits";

    /// <summary>Prefix of the counters' keys: the registry's cache user may touch only <c>clippybot:registry:*</c>.</summary>
    public string KeyPrefix { get; set; } = "clippybot:registry:rl";

    /// <summary>Unauthenticated requests (metadata, pages, refused API calls), per client address (an IPv6 /64 counts as one). PluginHosts poll
    /// timestamp every few seconds per replica, so this leaves room for many replicas behind one address.</summary>
    public RateLimitPolicy Anonymous { get; set; } = new() { PermitLimit = 1200 };

    /// <summary>Bundle downloads (<c>/tuf/targets/…</c>, up to the bundle size limit each), per client address, on top.</summary>
    public RateLimitPolicy Downloads { get; set; } = new() { PermitLimit = 300 };

    /// <summary>Signed-in publishers and reviewers, per person.</summary>
    public RateLimitPolicy Authenticated { get; set; } = new() { PermitLimit = 300 };
}

/// <summary>
/// The security page's rate limiting, for the registry too: per address for anonymous traffic (with a stricter window
/// for bundle downloads) and per person once signed in, on the platform's one shared counter. Refusals are 429 problem
/// details with <c>Retry-After</c>, counted in the security metrics — and come before any audit row is written, so an
/// anonymous flood of refused calls cannot fill the audit table.
/// </summary>
public static class RegistryRateLimits
{
    public const string DownloadsPolicy = "registry-downloads";

    public static WebApplicationBuilder AddRegistryRateLimits(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = builder.Configuration.GetSection(RegistryRateLimitsOptions.SectionName).Get<RegistryRateLimitsOptions>() ?? new RegistryRateLimitsOptions();
        foreach (var (name, policy) in new[] { ("Anonymous", options.Anonymous), ("Downloads", options.Downloads), ("Authenticated", options.Authenticated) })
        {
            if (policy.PermitLimit < 1 || policy.Window <= TimeSpan.Zero)
            {
                throw new InvalidOperationException($"{RegistryRateLimitsOptions.SectionName}:{name} needs PermitLimit ≥ 1 and a positive Window.");
            }
        }
        builder.Services.AddRateLimiter(limiter =>
        {
            // Charged once per request: when the downloads policy makes the middleware wait, it asks the global limiter
            // again, and a shared counter cannot give a permit back (OncePerRequest remembers the first admission).
            limiter.GlobalLimiter = new OncePerRequest(PartitionedRateLimiter.Create<HttpContext, string>(http =>
            {
                if (http.Request.Path.StartsWithSegments(Microsoft.Extensions.Hosting.ServiceDefaultsExtensions.HealthPath)
                    || http.Request.Path.StartsWithSegments(Microsoft.Extensions.Hosting.ServiceDefaultsExtensions.AlivePath))
                {
                    return RateLimitPartition.GetNoLimiter("probe");
                }
                return http.User.FindFirst("sub")?.Value is { } subject
                    ? Partition(http, $"{options.KeyPrefix}:user:{subject}", options.Authenticated)
                    : Partition(http, $"{options.KeyPrefix}:ip:{ClientAddressKey.Of(http.Connection.RemoteIpAddress)}", options.Anonymous);
            }));
            // Bundle downloads on top, decided on the exact count (an endpoint policy is asked once it is waited for).
            limiter.AddPolicy(DownloadsPolicy, http => Partition(http, $"{options.KeyPrefix}:downloads:{ClientAddressKey.Of(http.Connection.RemoteIpAddress)}",
                options.Downloads, decidesWithoutWaiting: false));
            limiter.OnRejected = (context, _) => RateLimitRefusal.WriteAsync(context, "registry");
        });
        return builder;
    }

    private static RateLimitPartition<string> Partition(HttpContext http, string key, RateLimitPolicy policy, bool decidesWithoutWaiting = true) =>
        RateLimitPartition.Get(key, k => new SharedFixedWindowLimiter(k, policy,
            http.RequestServices.GetRequiredService<IConnectionMultiplexer>(), http.RequestServices.GetRequiredService<TimeProvider>(), decidesWithoutWaiting));
}
