using ClippyBot.ServiceDefaults.Edge;
using System.Net;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.Edge;

/// <summary>Configuration section <c>SharedAddressMonitor</c>.</summary>
public sealed class SharedAddressMonitorOptions
{
    public const string SectionName = "SharedAddressMonitor";

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Below this many requests in a window nothing is concluded (one person testing alone is not a proxy).</summary>
    public int MinimumRequests { get; set; } = 100;

    /// <summary>Share of a window's requests from one address above which it is taken for an untrusted proxy.</summary>
    public double DominantShare { get; set; } = 0.5;
}

/// <summary>
/// Every per-address limit (sign-in, token endpoint, registration) assumes the connection's address is the client's. Behind
/// a proxy that is not in <c>Edge:TrustedProxies</c> — or the orchestrator's endpoint proxy — every client has the proxy's
/// address, and those limits silently become one global limit: one person's wrong passwords lock everyone out. This
/// watches for that shape (most of a window's requests from one address) and says so at the start of the next window.
/// Memory is bounded: the heavy hitter is found with the Misra-Gries summary over a handful of counters.
/// </summary>
public sealed partial class SharedAddressMonitor(IOptions<SharedAddressMonitorOptions> options, TimeProvider time, ILogger<SharedAddressMonitor> logger)
{
    private const int Counters = 8;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, long> _candidates = new(StringComparer.Ordinal);
    private long _window = -1;
    private long _total;

    public void Observe(IPAddress? address)
    {
        var settings = options.Value;
        var window = time.GetUtcNow().ToUnixTimeSeconds() / Math.Max(1, (long)settings.Window.TotalSeconds);
        var key = ClientAddressKey.Of(address);
        (string Address, long Count, long Total)? report = null;
        lock (_lock)
        {
            if (window != _window)
            {
                report = Dominant(settings);
                _window = window;
                _total = 0;
                _candidates.Clear();
            }
            _total++;
            if (_candidates.TryGetValue(key, out var count))
            {
                _candidates[key] = count + 1;
            }
            else if (_candidates.Count < Counters)
            {
                _candidates[key] = 1;
            }
            else
            {
                foreach (var candidate in _candidates.Keys.ToList())
                {
                    if (--_candidates[candidate] == 0)
                    {
                        _candidates.Remove(candidate);
                    }
                }
            }
        }
        if (report is { } dominant)
        {
            LogSharedAddress(logger, dominant.Address, dominant.Count, dominant.Total);
        }
    }

    /// <summary>The address with more than the dominant share of the window (a lower bound of its count), if any.</summary>
    private (string, long, long)? Dominant(SharedAddressMonitorOptions settings)
    {
        if (_total < settings.MinimumRequests || _candidates.Count == 0)
        {
            return null;
        }
        var top = _candidates.MaxBy(c => c.Value);
        return top.Value > _total * settings.DominantShare ? (top.Key, top.Value, _total) : null;
    }

    [LoggerMessage(LogLevel.Warning, "At least {Count} of the last window's {Total} requests came from one address ({Address}), which is not a trusted proxy: "
        + "per-address limits (sign-in, token endpoint, registration) are acting as one global limit. If a proxy or load balancer is in front "
        + "of this service, list its address range in Edge:TrustedProxies so the client's own address (X-Forwarded-For) is used.")]
    private static partial void LogSharedAddress(ILogger logger, string address, long count, long total);
}

public static class SharedAddressMonitorExtensions
{
    public static IHostApplicationBuilder AddSharedAddressMonitor(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<SharedAddressMonitorOptions>().Bind(builder.Configuration.GetSection(SharedAddressMonitorOptions.SectionName))
            .Validate(o => o.Window >= TimeSpan.FromSeconds(1) && o.MinimumRequests >= 1 && o.DominantShare is > 0 and < 1,
                "SharedAddressMonitor needs a Window of at least a second, MinimumRequests ≥ 1 and a DominantShare between 0 and 1.")
            .ValidateOnStart();
        builder.Services.AddSingleton<SharedAddressMonitor>();
        return builder;
    }

    /// <summary>After forwarded headers are applied: what it sees is the address every per-address limit counts.</summary>
    public static WebApplication UseSharedAddressMonitor(this WebApplication app)
    {
        var monitor = app.Services.GetRequiredService<SharedAddressMonitor>();
        app.Use((context, next) =>
        {
            monitor.Observe(context.Connection.RemoteIpAddress);
            return next(context);
        });
        return app;
    }
}
