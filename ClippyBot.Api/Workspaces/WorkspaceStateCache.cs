using System.Collections.Concurrent;
using ClippyBot.ServiceDefaults.Data;
using StackExchange.Redis;
using ClippyBot.ServiceDefaults.Redis;

namespace ClippyBot.Api.Workspaces;

/// <summary>
/// What every workspace request reads — the caller's membership, an installed plugin — kept in memory per replica so the
/// hot path skips the database. Correctness rests on invalidation, not on expiry:
/// <list type="bullet">
/// <item>every change to a workspace's members, settings or plugins calls <see cref="InvalidateAsync"/>, which clears this
/// replica at once and tells the others over Redis pub/sub (delivered in milliseconds);</item>
/// <item>a value is stored only if no invalidation of its workspace arrived while it was being read, so a read that raced a
/// change cannot re-insert the old value;</item>
/// <item>only while this replica is subscribed (<see cref="RedisMirror"/>): after any change of the Redis connection
/// (messages may be lost) reads go to the database, and everything is forgotten when the subscription is back;</item>
/// <item>entries also expire after <see cref="MaxAge"/>, a bound should anything above still fail.</item>
/// </list>
/// Nothing secret is held: roles, settings flags and installed-plugin rows (grants and configuration, no secret values).
/// </summary>
public sealed class WorkspaceStateCache : IDisposable
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(60);
    private static readonly RedisChannel Channel = RedisChannel.Literal("clippybot:api:workspace-changed");
    private const string Everything = "*";

    private readonly IConnectionMultiplexer _redis;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<Guid, Slot> _slots = new();
    private readonly RedisMirror _mirror;
    private long _sweptAtTicks;

    public WorkspaceStateCache(IConnectionMultiplexer redis, TimeProvider time)
    {
        _redis = redis;
        _time = time;
        _mirror = new RedisMirror(redis, Channel, message => Forget(message.ToString()));
    }

    /// <summary>The cached value for <paramref name="key"/> in the workspace, or what <paramref name="load"/> reads (null is not cached).</summary>
    public async Task<T?> GetOrLoadAsync<T>(Guid workspaceId, string key, Func<CancellationToken, Task<T?>> load, CancellationToken ct) where T : class
    {
        ArgumentNullException.ThrowIfNull(load);
        var slot = _slots.GetOrAdd(workspaceId, _ => new Slot());
        var now = _time.GetUtcNow();
        if (_mirror.Loaded && slot.Entries.TryGetValue(key, out var hit) && now - hit.At < MaxAge && hit.Value is T cached)
        {
            return cached;
        }
        Sweep(now);
        var version = Volatile.Read(ref slot.Version);
        var value = await load(ct);
        if (value is not null && await EnsureSubscribedAsync() && Volatile.Read(ref slot.Version) == version)
        {
            slot.Entries[key] = (value, now);
            // An invalidation between the check and the store would be lost: check again and undo.
            if (Volatile.Read(ref slot.Version) != version)
            {
                slot.Entries.TryRemove(key, out _);
            }
        }
        return value;
    }

    /// <summary>Forgets the workspace here and on every other replica; call after any change to its members, settings or plugins.</summary>
    public async Task InvalidateAsync(Guid workspaceId)
    {
        Forget(workspaceId.ToString());
        await PublishAsync(workspaceId.ToString());
    }

    /// <summary>Forgets everything everywhere (a person erased from all their workspaces at once).</summary>
    public async Task InvalidateAllAsync()
    {
        Forget(Everything);
        await PublishAsync(Everything);
    }

    private async Task PublishAsync(string message)
    {
        try
        {
            await _redis.GetSubscriber().PublishAsync(Channel, message);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // The other replicas lost their subscription too (same Redis): they have forgotten everything already.
        }
    }

    /// <summary>
    /// Whether this replica is subscribed with no connection trouble since: (re)subscribing forgets everything first,
    /// since invalidations may have been missed while it was not.
    /// </summary>
    private async Task<bool> EnsureSubscribedAsync()
    {
        await _mirror.LoadAsync((_, _) =>
        {
            Forget(Everything);
            return Task.CompletedTask;
        });
        return _mirror.Loaded;
    }

    private void Forget(string message)
    {
        if (message == Everything)
        {
            foreach (var slot in _slots.Values)
            {
                slot.Clear();
            }
        }
        else if (Guid.TryParse(message, out var workspaceId) && _slots.TryGetValue(workspaceId, out var slot))
        {
            slot.Clear();
        }
    }

    /// <summary>Once a minute, drops expired entries and workspaces left with none (a removed slot is simply made again).</summary>
    private void Sweep(DateTimeOffset now)
    {
        var last = Interlocked.Read(ref _sweptAtTicks);
        if (now.UtcTicks - last < TimeSpan.TicksPerMinute || Interlocked.CompareExchange(ref _sweptAtTicks, now.UtcTicks, last) != last)
        {
            return;
        }
        foreach (var (workspaceId, slot) in _slots)
        {
            foreach (var entry in slot.Entries.Where(e => now - e.Value.At >= MaxAge))
            {
                slot.Entries.TryRemove(entry);
            }
            if (slot.Entries.IsEmpty)
            {
                _slots.TryRemove(new KeyValuePair<Guid, Slot>(workspaceId, slot));
            }
        }
    }

    public void Dispose() => _mirror.Dispose();

    private sealed class Slot
    {
        public long Version;
        public readonly ConcurrentDictionary<string, (object Value, DateTimeOffset At)> Entries = new(StringComparer.Ordinal);

        public void Clear()
        {
            Interlocked.Increment(ref Version);
            Entries.Clear();
        }
    }
}
