using ClippyBot.Registry.Data;
using ClippyBot.Tuf;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Registry.Metadata;

/// <summary>
/// Announcements of new metadata, for PluginHosts waiting at <c>/tuf/changes</c> (a long poll: they learn of an approval
/// or a yank at once instead of at their next refresh). Only a wake-up: the client then runs the full TUF update, so a
/// forged or replayed announcement can at most cause one extra refresh. This replica's publications signal at once;
/// other replicas' are seen by one shared check of the newest timestamp version a second, made only while someone waits.
/// </summary>
public sealed partial class MetadataChanges(IServiceScopeFactory scopes, TimeProvider time, ILogger<MetadataChanges> logger) : BackgroundService
{
    /// <summary>Most requests one replica holds open; beyond, a waiter is told "nothing yet" and falls back to its own refresh.</summary>
    public const int MaxWaiters = 2000;

    /// <summary>Most one address (an IPv6 /64 counting as one) holds open: a few addresses cannot take every slot.</summary>
    public const int MaxWaitersPerAddress = 32;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _byAddress = new(StringComparer.Ordinal);

    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _latest;
    private int _waiters;

    /// <summary>The newest timestamp version this replica knows of.</summary>
    public long Latest => Interlocked.Read(ref _latest);

    /// <summary>A timestamp version <paramref name="version"/> now exists.</summary>
    public void Published(long version)
    {
        long seen;
        do
        {
            seen = Interlocked.Read(ref _latest);
            if (version <= seen)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _latest, version, seen) != seen);
        Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    /// <summary>Waits until a timestamp newer than <paramref name="after"/> exists (its version), or null when <paramref name="wait"/> ran out.</summary>
    public async Task<long?> WaitAsync(long after, TimeSpan wait, string address, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (_byAddress.AddOrUpdate(address, 1, (_, n) => n + 1) > MaxWaitersPerAddress)
        {
            Leave(address);
            return Latest > after ? Latest : null;
        }
        if (Interlocked.Increment(ref _waiters) > MaxWaiters)
        {
            Interlocked.Decrement(ref _waiters);
            Leave(address);
            return Latest > after ? Latest : null;
        }
        try
        {
            var deadline = time.GetUtcNow() + wait;
            while (true)
            {
                var next = Volatile.Read(ref _next).Task;
                if (Latest > after)
                {
                    return Latest;
                }
                var remaining = deadline - time.GetUtcNow();
                if (remaining <= TimeSpan.Zero)
                {
                    return null;
                }
                // The timer goes with the wait: a publication does not leave it running for the rest of the 8 s.
                using var turn = CancellationTokenSource.CreateLinkedTokenSource(ct);
                await Task.WhenAny(next, Task.Delay(remaining, time, turn.Token));
                await turn.CancelAsync();
                ct.ThrowIfCancellationRequested();
            }
        }
        finally
        {
            Interlocked.Decrement(ref _waiters);
            Leave(address);
        }
    }

    private void Leave(string address)
    {
        if (_byAddress.AddOrUpdate(address, 0, (_, n) => n - 1) <= 0)
        {
            _byAddress.TryRemove(new KeyValuePair<string, int>(address, 0));
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1), time);
        do
        {
            if (Volatile.Read(ref _waiters) == 0 && Latest > 0)
            {
                continue;
            }
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                var newest = await scope.ServiceProvider.GetRequiredService<RegistryDbContext>().MetadataFiles.AsNoTracking()
                    .Where(f => f.Role == TufRole.Timestamp).MaxAsync(f => (long?)f.Version, stoppingToken);
                Published(newest ?? 0);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
#pragma warning disable CA1031 // The database away for a moment: waiters fall back on their own refresh; try again next second.
            catch (Exception e)
#pragma warning restore CA1031
            {
                LogCheckFailed(logger, e.GetType().Name);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(1, LogLevel.Warning, "Checking for new registry metadata failed ({Error}); waiting clients fall back on their own refresh")]
    private static partial void LogCheckFailed(ILogger logger, string error);
}
