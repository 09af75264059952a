using System.Net;
using ClippyBot.Identity.Accounts;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using StackExchange.Redis;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>
/// The per-address sign-in throttle: through the real login form, and directly against the rig's real Redis with two
/// throttles standing for two replicas. Every test uses an address of its own.
/// </summary>
[TestClass]
public sealed class LoginThrottleTests
{
    private static ConnectionMultiplexer s_redis = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);

    [ClassCleanup]
    public static async Task StopAsync() => await s_redis.DisposeAsync();

    [TestMethod]
    public async Task Too_many_failed_sign_ins_from_one_address_are_refused_with_429_even_for_the_right_password_while_successes_are_not_counted()
    {
        var ct = TestContext.CancellationToken;
        await using var identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?>
        {
            ["LoginThrottle:MaxAttemptsPerWindow"] = "3",
            ["LoginThrottle:Window"] = "00:10:00",
        }, services => services.AddSingleton<IStartupFilter>(new ProtocolEdgeTests.ClientAddress(NewAddress())));
        var email = NewEmail();
        using (var registering = identity.Browser())
        {
            await RegisterAsync(registering, email, GoodPassword, ct);
        }

        // An office behind one address: its people signing in do not use up the address's allowance.
        for (var i = 0; i < 5; i++)
        {
            using var browser = identity.Browser();
            using var signedIn = await LoginAsync(browser, email, GoodPassword, ct);
            Assert.AreEqual(HttpStatusCode.Redirect, signedIn.StatusCode, $"sign-in {i + 1}");
        }
        using (var guesser = identity.Browser())
        {
            for (var i = 0; i < 3; i++)
            {
                using var attempt = await LoginAsync(guesser, NewEmail(), "guessing passwords", ct);
                Assert.AreEqual(HttpStatusCode.OK, attempt.StatusCode);
            }
        }
        using var late = identity.Browser();
        using var throttled = await LoginAsync(late, email, GoodPassword, ct);

        Assert.AreEqual(HttpStatusCode.TooManyRequests, throttled.StatusCode);
        StringAssert.Contains(await throttled.Content.ReadAsStringAsync(ct), "Too many sign-in attempts");
    }

    [TestMethod]
    public async Task An_address_counted_on_one_replica_is_refused_on_another_once_at_its_limit()
    {
        var clock = Clock();
        using var a = Throttle(clock, limit: 3);
        using var b = Throttle(clock, limit: 3);
        await a.LoadAsync();
        await b.LoadAsync();
        var address = NewAddress();

        for (var i = 0; i < 3; i++)
        {
            var attempt = await a.BeginAsync(address);
            Assert.IsTrue(attempt.Allowed, $"failure {i + 1} may be tried");
            await a.CountAsync(attempt);
        }

        Assert.IsFalse((await a.BeginAsync(address)).Allowed, "refused where it was counted");
        await Poll.UntilAsync(async () => !(await b.BeginAsync(address)).Allowed, TimeSpan.FromSeconds(1), "the other replica refuses", TestContext.CancellationToken);
    }

    [TestMethod]
    public async Task Concurrent_guesses_from_a_counted_address_never_pass_its_limit()
    {
        var clock = Clock();
        using var throttle = Throttle(clock, limit: 5);
        await throttle.LoadAsync();
        var address = NewAddress();
        var first = await throttle.BeginAsync(address);
        Assert.IsFalse(first.Reserved, "an address with nothing counted costs no Redis round trip");
        await throttle.CountAsync(first);

        var attempts = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => throttle.BeginAsync(address)));

        Assert.IsTrue(attempts.All(a => a.Reserved), "counted before it runs");
        Assert.AreEqual(4, attempts.Count(a => a.Allowed), "one failure counted, four left of five");
    }

    [TestMethod]
    public async Task A_successful_attempt_from_a_counted_address_gives_its_count_back()
    {
        var clock = Clock();
        using var throttle = Throttle(clock, limit: 2);
        await throttle.LoadAsync();
        var address = NewAddress();
        await throttle.CountAsync(await throttle.BeginAsync(address));

        for (var i = 0; i < 5; i++)
        {
            var success = await throttle.BeginAsync(address);
            Assert.IsTrue(success.Allowed, $"success {i + 1}");
            await throttle.ForgiveAsync(success);
        }
        var second = await throttle.BeginAsync(address);
        Assert.IsTrue(second.Allowed);
        await throttle.CountAsync(second);

        Assert.IsFalse((await throttle.BeginAsync(address)).Allowed, "two failures: the limit");
    }

    [TestMethod]
    public async Task A_replica_started_later_loads_the_counted_addresses_and_the_next_window_starts_checked()
    {
        var clock = Clock();
        using var a = Throttle(clock, limit: 1);
        await a.LoadAsync();
        var address = NewAddress();
        await a.CountAsync(await a.BeginAsync(address));

        using var late = Throttle(clock, limit: 1);
        await late.LoadAsync();
        Assert.IsFalse((await late.BeginAsync(address)).Allowed, "loaded at start");

        clock.Advance(TimeSpan.FromMinutes(10));
        var nextWindow = await late.BeginAsync(address);
        Assert.IsTrue(nextWindow.Allowed, "a new window starts from zero");
        Assert.IsTrue(nextWindow.Reserved, "but the address is still decided exactly");
    }

    private static FakeTimeProvider Clock() =>
        // A fixed instant inside a window, far from any other test's counters.
        new(new DateTimeOffset(2030, 1, 1, 0, 1, 0, TimeSpan.Zero).AddMinutes(10 * Random.Shared.Next(1_000_000)));

    private static LoginThrottle Throttle(TimeProvider clock, int limit) =>
        new(s_redis, Options.Create(new LoginThrottleOptions { MaxAttemptsPerWindow = limit, Window = TimeSpan.FromMinutes(10) }), clock, NullLogger<LoginThrottle>.Instance);

    private static IPAddress NewAddress()
    {
        var bytes = new byte[16];
        Random.Shared.NextBytes(bytes);
        bytes[0] = 0x20;
        bytes[1] = 0x01;
        bytes[2] = 0x0d;
        bytes[3] = 0xb8; // 2001:db8::/32, the documentation prefix
        return new IPAddress(bytes);
    }
}
