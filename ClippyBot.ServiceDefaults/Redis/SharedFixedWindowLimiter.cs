using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;

namespace ClippyBot.ServiceDefaults.Redis;

/// <summary>One limit: this many requests per window.</summary>
public sealed class RateLimitPolicy
{
    public int PermitLimit { get; set; }

    public TimeSpan Window { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>
/// A fixed-window limit shared by every replica through one Redis counter per caller and window, without a Redis round
/// trip on most requests. Each replica keeps its view of the shared count: the last count Redis returned plus its own
/// requests not yet acknowledged. Far from the limit a request is admitted on that view and counted in Redis in the
/// background (each reply refreshes the view). Near the limit (the last tenth, and at least the last ten permits), or
/// when the view is older than <see cref="ViewMaxAge"/>, or while a twentieth of the limit is unacknowledged on this
/// replica (a burst), the request waits for Redis and is decided on the exact count — so the limit is exact where it
/// matters, and in a burst across replicas the total can exceed it by at most about a twentieth per replica. If Redis cannot be reached the replica goes on counting on its own (per-replica limit).
/// </summary>
/// <param name="decidesWithoutWaiting">False for endpoint policies: ASP.NET Core's middleware asks an endpoint limiter again
/// (after dropping its lease) whenever the global one says "wait", and a shared counter cannot give a permit back, so an
/// endpoint limiter decides only when it is waited for — once per request.</param>
public sealed class SharedFixedWindowLimiter(string key, RateLimitPolicy policy, IConnectionMultiplexer redis, TimeProvider time, bool decidesWithoutWaiting = true)
    : RateLimiter
{
    public static readonly TimeSpan ViewMaxAge = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private long _window = long.MinValue;
    private long _known;
    private int _pending;
    private DateTimeOffset _syncedAt = DateTimeOffset.MinValue;
    private DateTimeOffset _lastUsed;

    public override TimeSpan? IdleDuration
    {
        get
        {
            lock (_gate)
            {
                return _pending > 0 ? null : time.GetUtcNow() - _lastUsed;
            }
        }
    }

    public override RateLimiterStatistics? GetStatistics()
    {
        lock (_gate)
        {
            return new RateLimiterStatistics { CurrentAvailablePermits = Math.Max(0, policy.PermitLimit - _known - _pending) };
        }
    }

    /// <summary>
    /// The fast path (ASP.NET Core's middleware tries it first): admits on this replica's view when that is fresh and far
    /// from the limit; otherwise answers "not now", and the middleware waits in <see cref="AcquireAsyncCore"/> for Redis.
    /// </summary>
    protected override RateLimitLease AttemptAcquireCore(int permitCount) => decidesWithoutWaiting ? TryOnView(permitCount, out _) ?? NotNow : NotNow;

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(int permitCount, CancellationToken cancellationToken)
    {
        if (TryOnView(permitCount, out var window) is { } decided)
        {
            return decided;
        }
        var now = time.GetUtcNow();
        // Exact: the shared count after this request decides.
        long count;
        try
        {
            count = await IncrementAsync(window, permitCount);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            lock (_gate)
            {
                if (_window != window || _known + _pending + permitCount > policy.PermitLimit)
                {
                    return Rejected(now);
                }
                _known += permitCount;
                return Admitted;
            }
        }
        lock (_gate)
        {
            if (_window == window)
            {
                _known = Math.Max(_known, count);
                _syncedAt = now;
            }
        }
        return count <= policy.PermitLimit ? Admitted : Rejected(now);
    }

    /// <summary>A decision on the view alone, or null when it must be exact (near the limit, or the view is stale).</summary>
    private RateLimitLease? TryOnView(int permitCount, out long window)
    {
        var now = time.GetUtcNow();
        lock (_gate)
        {
            window = Enter(now);
            var remaining = policy.PermitLimit - _known - _pending;
            // Exact near the limit, on a stale view, and once too many of this replica's admissions are unacknowledged
            // (a burst): that caps what all replicas together can admit beyond the limit at about 5 % each.
            if (remaining <= Math.Max(10, policy.PermitLimit / 10) || now - _syncedAt > ViewMaxAge || _pending >= Math.Max(1, policy.PermitLimit / 20))
            {
                return null;
            }
            if (permitCount > remaining)
            {
                return Rejected(now);
            }
            _pending += permitCount;
        }
        // Counted in Redis in the background (outside the lock: its continuation takes it).
        _ = CountAsync(window, permitCount, now);
        return Admitted;
    }

    /// <summary>Moves to the current window (a new window starts from zero); returns its number.</summary>
    private long Enter(DateTimeOffset now)
    {
        var window = FixedWindowCounter.WindowOf(now, policy.Window);
        if (window != _window)
        {
            _window = window;
            _known = 0;
            _pending = 0;
            _syncedAt = DateTimeOffset.MinValue;
        }
        _lastUsed = now;
        return window;
    }

    private async Task CountAsync(long window, int permitCount, DateTimeOffset now)
    {
        long? count = null;
        try
        {
            count = await IncrementAsync(window, permitCount);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // Counted locally below; the next exact decision asks Redis again.
        }
        lock (_gate)
        {
            if (_window != window)
            {
                return;
            }
            _pending -= permitCount;
            if (count is { } shared)
            {
                _known = Math.Max(_known, shared);
                _syncedAt = now;
            }
            else
            {
                _known += permitCount;
            }
        }
    }

    private async Task<long> IncrementAsync(long window, int permitCount)
    {
        return await FixedWindowCounter.IncrementAsync(redis.GetDatabase(), FixedWindowCounter.Key(key, "", window), policy.Window, permitCount);
    }

    private static readonly PlainLease Admitted = new(true);
    private static readonly PlainLease NotNow = new(false);

    private RejectedLease Rejected(DateTimeOffset now)
    {
        return new RejectedLease(FixedWindowCounter.EndOf(FixedWindowCounter.WindowOf(now, policy.Window), policy.Window) - now);
    }

    /// <summary><see cref="Admitted"/>, or <see cref="NotNow"/>: "ask again and wait" — not a refusal.</summary>
    private sealed class PlainLease(bool acquired) : RateLimitLease
    {
        public override bool IsAcquired => acquired;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }

    private sealed class RejectedLease(TimeSpan retryAfter) : RateLimitLease
    {
        public override bool IsAcquired => false;

        public override IEnumerable<string> MetadataNames => [MetadataName.RetryAfter.Name];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = metadataName == MetadataName.RetryAfter.Name ? retryAfter : null;
            return metadata is not null;
        }
    }
}

/// <summary>The one answer to a request over its limit: a 429 problem with <c>Retry-After</c>, counted in the security metrics.</summary>
public static class RateLimitRefusal
{
    public static async ValueTask WriteAsync(OnRejectedContext context, string policy)
    {
        ArgumentNullException.ThrowIfNull(context);
        var http = context.HttpContext;
        http.RequestServices.GetRequiredService<SecurityMetrics>().RateLimited(policy);
        http.RequestServices.GetRequiredService<Detection.SecuritySignals>().Raise(ClippyBot.Contracts.SecuritySignalNames.RateLimited, Caller(http), policy);
        if (context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter))
        {
            http.Response.Headers.RetryAfter = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        await Results.Problem(statusCode: StatusCodes.Status429TooManyRequests, title: "Too many requests",
            detail: "You have reached the request limit; retry after the time in Retry-After.", type: ClippyBot.Contracts.ProblemTypes.RateLimited).ExecuteAsync(http);
    }

    /// <summary>Who was refused, for the alert rules: the account, API key or client, else the address.</summary>
    public static string Caller(HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var user = http.User;
        return user.FindFirst("api_key_id")?.Value is { } key ? "api-key:" + key
            : user.FindFirst("sub")?.Value is { } sub ? (user.FindFirst("client_id")?.Value == sub ? "client:" : "account:") + sub
            // Per IPv4 address or IPv6 /64, as the throttles count: one attacker's /64 is one subject, not billions.
            : "address:" + Edge.ClientAddressKey.Of(http.Connection.RemoteIpAddress);
    }
}

/// <summary>
/// The global limit, charged at most once per request. ASP.NET Core's middleware first tries the global and the
/// endpoint limiter without waiting; when the endpoint's says "wait" (a sensitive endpoint decides on Redis's exact
/// count), it drops the global lease and asks the global limiter again — and a shared counter cannot take a permit
/// back, so the request was charged twice. The first admission is remembered on the request.
/// </summary>
public sealed class OncePerRequest(PartitionedRateLimiter<HttpContext> inner) : PartitionedRateLimiter<HttpContext>
{
    private static readonly object AdmittedKey = new();

    public override RateLimiterStatistics? GetStatistics(HttpContext resource) => inner.GetStatistics(resource);

    protected override RateLimitLease AttemptAcquireCore(HttpContext resource, int permitCount)
    {
        ArgumentNullException.ThrowIfNull(resource);
        if (resource.Items.ContainsKey(AdmittedKey))
        {
            return AlreadyCharged.Instance;
        }
        var lease = inner.AttemptAcquire(resource, permitCount);
        if (lease.IsAcquired)
        {
            resource.Items[AdmittedKey] = true;
        }
        return lease;
    }

    protected override async ValueTask<RateLimitLease> AcquireAsyncCore(HttpContext resource, int permitCount, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(resource);
        if (resource.Items.ContainsKey(AdmittedKey))
        {
            return AlreadyCharged.Instance;
        }
        var lease = await inner.AcquireAsync(resource, permitCount, cancellationToken);
        if (lease.IsAcquired)
        {
            resource.Items[AdmittedKey] = true;
        }
        return lease;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }

    private sealed class AlreadyCharged : RateLimitLease
    {
        public static readonly AlreadyCharged Instance = new();

        public override bool IsAcquired => true;

        public override IEnumerable<string> MetadataNames => [];

        public override bool TryGetMetadata(string metadataName, out object? metadata)
        {
            metadata = null;
            return false;
        }
    }
}
