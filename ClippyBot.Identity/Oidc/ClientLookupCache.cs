using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// Client registrations by client id, known and unknown, for <see cref="ClientCacheKeys.Lifetime"/>. Unknown ids are kept
/// too, so "no such client" costs what "wrong secret" costs and the timing does not tell which ids exist — and because
/// those keys are chosen by whoever sends a request, the cache has its own size bound (<c>Oidc:ClientCacheSize</c>
/// entries; ids are at most <see cref="ParameterBounds.ClientId"/> characters): when full, a new id is simply looked up
/// again next time.
/// </summary>
public sealed class ClientLookupCache : IDisposable
{
    private readonly MemoryCache _cache;

    public ClientLookupCache(IOptions<OidcOptions> options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _cache = new MemoryCache(new MemoryCacheOptions
        {
            SizeLimit = options.Value.ClientCacheSize,
            CompactionPercentage = 0.25,
            Clock = new SystemClockAdapter(time),
        });
    }

    /// <summary>Entries held now (bounded by the configured size).</summary>
    public int Count => _cache.Count;

    public bool TryGetValue(string key, out object? value) => _cache.TryGetValue(key, out value);

    public void Set(string key, object value) =>
        _cache.Set(key, value, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = ClientCacheKeys.Lifetime });

    private long _generation;

    /// <summary>Taken before reading a client from the database: <see cref="SetIfUnchanged"/> then stores nothing if any eviction came meanwhile.</summary>
    public long Generation => Interlocked.Read(ref _generation);

    /// <summary>
    /// Stores what was read unless an eviction arrived since <paramref name="generation"/> — otherwise a read that began
    /// before a change (an app deleted, a secret rotated) could put the old registration back for 30 s after the eviction.
    /// </summary>
    public void SetIfUnchanged(string key, object value, long generation)
    {
        lock (_cache)
        {
            if (Generation == generation)
            {
                Set(key, value);
            }
        }
    }

    public void Remove(string key) => _cache.Remove(key);

    /// <summary>Drops everything cached about one client (its registration and its client-credentials view).</summary>
    public void Evict(string clientId)
    {
        lock (_cache)
        {
            Interlocked.Increment(ref _generation);
            _cache.Remove(ClientCacheKeys.Application(clientId));
            _cache.Remove(ClientCacheKeys.Credentials(clientId));
        }
    }

    public void Clear()
    {
        lock (_cache)
        {
            Interlocked.Increment(ref _generation);
            _cache.Clear();
        }
    }

    public void Dispose() => _cache.Dispose();

#pragma warning disable CS0618 // MemoryCacheOptions.Clock is still typed ISystemClock.
    private sealed class SystemClockAdapter(TimeProvider time) : Microsoft.Extensions.Internal.ISystemClock
    {
        public DateTimeOffset UtcNow => time.GetUtcNow();
    }
#pragma warning restore CS0618
}
