using ClippyBot.ServiceDefaults.Redis;
using ClippyBot.Tests.Rig;
using StackExchange.Redis;

namespace ClippyBot.Tests.Foundation;

/// <summary>The one Redis counter behind Identity's throttles and the Api's limiter, against the rig's real Redis.</summary>
[TestClass]
public sealed class FixedWindowCounterTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Counts_per_subject_and_window_and_a_new_window_starts_from_zero()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
        var db = redis.GetDatabase();
        var prefix = $"test:counter:{Guid.NewGuid():N}:";
        var window = TimeSpan.FromMinutes(1);
        var start = new DateTimeOffset(2026, 12, 3, 10, 0, 0, TimeSpan.Zero);

        Assert.AreEqual((1L, start + window), await FixedWindowCounter.CountAsync(db, prefix, "a", window, start));
        Assert.AreEqual((2L, start + window), await FixedWindowCounter.CountAsync(db, prefix, "a", window, start.AddSeconds(59)));
        Assert.AreEqual((1L, start + window), await FixedWindowCounter.CountAsync(db, prefix, "b", window, start.AddSeconds(30)), "another subject");
        Assert.AreEqual((1L, start + 2 * window), await FixedWindowCounter.CountAsync(db, prefix, "a", window, start + window), "the next window");
        var key = FixedWindowCounter.Key(prefix, "a", FixedWindowCounter.WindowOf(start, window));
        Assert.AreEqual(1L, await FixedWindowCounter.IncrementAsync(db, key, window, by: -1), "an attempt given back");
    }

    [TestMethod]
    public async Task A_counter_whose_expiry_was_lost_gets_one_at_its_next_count_so_it_never_lives_forever()
    {
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
        var db = redis.GetDatabase();
        var window = TimeSpan.FromMinutes(1);
        // As left by an increment whose EXPIRE never arrived (the old code set it only on the first count).
        RedisKey key = $"test:counter:{Guid.NewGuid():N}:a:1";
        await db.StringSetAsync(key, 5);
        Assert.IsNull(await db.KeyTimeToLiveAsync(key));

        Assert.AreEqual(6L, await FixedWindowCounter.IncrementAsync(db, key, window));
        var ttl = await db.KeyTimeToLiveAsync(key);
        Assert.IsNotNull(ttl, "the count set an expiry");
        Assert.IsTrue(ttl <= window + TimeSpan.FromSeconds(5) && ttl > window - TimeSpan.FromSeconds(5), $"within its window and a short grace: {ttl}");
    }
}
