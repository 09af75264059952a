using System.Diagnostics;
using ClippyBot.Plugins.Sandbox;
using ClippyBot.Tests.Rig;
using Wasmtime;

namespace ClippyBot.Tests.PluginHost;

/// <summary>
/// The sandbox's wall clock ticks only while invocations run: it parks when the host is idle, keeps ticking under steady
/// traffic of invocations far shorter than a tick, and a parked clock still enforces the next invocation's deadline.
/// </summary>
[TestClass]
public sealed class EpochClockTests
{
    private static readonly TimeSpan Idle = EpochClock.Tick * EpochClock.IdleTicks;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task An_idle_clock_parks_and_the_next_invocation_still_gets_its_wall_clock_deadline()
    {
        // Fuel too, so a clock that never wakes fails the test (out of fuel after seconds) instead of hanging it.
        using var engine = new Engine(new Config().WithEpochInterruption(true).WithFuelConsumption(true));
        using var module = Module.FromText(engine, "spin", """(module (func (export "run") (loop $l (br $l))))""");
        using var clock = new EpochClock(engine);

        await Poll.UntilAsync(() => Task.FromResult(clock.IsParked), Idle * 5, "the clock parks after an idle second", TestContext.CancellationToken);

        var started = Stopwatch.StartNew();
        using (clock.Enter())
        {
            using var store = new Store(engine);
            store.Fuel = 10_000_000_000;
            store.SetEpochDeadline(5);
            var run = new Instance(store, module).GetAction("run")!;
            var trap = Assert.ThrowsExactly<TrapException>(() => run());
            Assert.AreEqual(TrapCode.Interrupt, trap.Type, "stopped by the deadline, not by fuel");
        }
        Assert.IsLessThan(TimeSpan.FromSeconds(5), started.Elapsed, "the parked clock woke and ticked the deadline out");
    }

    [TestMethod]
    public async Task Steady_short_invocations_keep_the_clock_ticking()
    {
        using var engine = new Engine(new Config().WithEpochInterruption(true));
        using var clock = new EpochClock(engine);
        using (clock.Enter())
        {
            await Poll.UntilAsync(() => Task.FromResult(!clock.IsParked), Idle * 5, "entering wakes the clock", TestContext.CancellationToken);
        }

        // Invocations of a few microseconds, one every 5 ms (well under a tick apart), for twice the idle period: a clock
        // that only sampled "is anything running" at its ticks would see nothing and park.
        var traffic = Stopwatch.StartNew();
        while (traffic.Elapsed < Idle * 2)
        {
            using (clock.Enter())
            {
                Thread.SpinWait(100);
            }
            Assert.IsFalse(clock.IsParked, $"parked {traffic.ElapsedMilliseconds} ms into steady traffic");
            await Task.Delay(5, TestContext.CancellationToken);
        }
    }
}
