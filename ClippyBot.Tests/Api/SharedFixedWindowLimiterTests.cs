using System.Threading.RateLimiting;
using ClippyBot.Api.RateLimiting;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;

using ClippyBot.ServiceDefaults.Redis;

namespace ClippyBot.Tests.Api;

/// <summary>The shared fixed window against the test rig's real Redis: two limiters on one key stand for two replicas.</summary>
[TestClass]
public sealed class SharedFixedWindowLimiterTests
{
    private static ConnectionMultiplexer s_redis = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);

    [ClassCleanup]
    public static async Task StopAsync() => await s_redis.DisposeAsync();

    [TestMethod]
    public async Task Two_replicas_in_a_burst_admit_the_limit_within_a_twentieth_each_mostly_without_waiting_and_refuse_with_retry_after()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 29, 10, 0, 10, TimeSpan.Zero));
        var policy = new RateLimitPolicy { PermitLimit = 100, Window = TimeSpan.FromMinutes(1) };
        var key = "test-shared-" + Guid.NewGuid().ToString("N");
        using var a = new SharedFixedWindowLimiter(key, policy, s_redis, clock);
        using var b = new SharedFixedWindowLimiter(key, policy, s_redis, clock);

        var admitted = 0;
        var withoutWaiting = 0;
        RateLimitLease? refusal = null;
        for (var i = 0; i < 130; i++)
        {
            var limiter = i % 2 == 0 ? a : b;
            using var attempt = limiter.AttemptAcquire();
            if (attempt.IsAcquired)
            {
                withoutWaiting++;
                admitted++;
            }
            else
            {
                var lease = await limiter.AcquireAsync(cancellationToken: TestContext.CancellationToken);
                if (lease.IsAcquired)
                {
                    admitted++;
                    lease.Dispose();
                }
                else
                {
                    refusal ??= lease;
                }
            }
        }

        // A burst with no pause between requests: each replica's view lags by the other's unacknowledged admissions, at
        // most a twentieth of the limit each.
        TestContext.WriteLine($"admitted {admitted}, {withoutWaiting} without waiting");
        Assert.IsTrue(admitted is >= 100 and <= 110, $"admitted {admitted} of a limit of 100");
        Assert.IsTrue(withoutWaiting > 30, $"requests far from the limit did not wait for Redis ({withoutWaiting})");
        Assert.IsNotNull(refusal);
        Assert.IsTrue(refusal.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter));
        Assert.AreEqual(TimeSpan.FromSeconds(50), retryAfter, "until the end of the window");
        var counted = (long)await s_redis.GetDatabase().StringGetAsync($"{key}:{clock.GetUtcNow().UtcTicks / policy.Window.Ticks}");
        Assert.IsTrue(counted >= 100, $"every admitted request is counted in Redis ({counted})");

        // The next window starts from zero.
        clock.Advance(TimeSpan.FromMinutes(1));
        using var fresh = await a.AcquireAsync(cancellationToken: TestContext.CancellationToken);
        Assert.IsTrue(fresh.IsAcquired);
        refusal.Dispose();
    }
}
