using StackExchange.Redis;

namespace ClippyBot.ServiceDefaults.Redis;

/// <summary>
/// Whether an in-memory mirror of state kept in Redis is complete. The mirror subscribes to the channel its changes are
/// announced on, and only then loads what is already there (so a change made during the load arrives as an
/// announcement); from then on it answers from memory. Any loss or restore of the connection may have dropped
/// announcements, so the mirror is incomplete again until the next load — its owner reads Redis meanwhile.
/// </summary>
public sealed class RedisMirror : IDisposable
{
    private readonly IConnectionMultiplexer _redis;
    private readonly RedisChannel _channel;
    private readonly Action<RedisValue> _onAnnouncement;
    private readonly SemaphoreSlim _loading = new(1, 1);
    private volatile bool _loaded;
    private bool _subscribed;
    private long _generation;

    public RedisMirror(IConnectionMultiplexer redis, RedisChannel channel, Action<RedisValue> onAnnouncement)
    {
        _redis = redis;
        _channel = channel;
        _onAnnouncement = onAnnouncement;
        _redis.ConnectionFailed += OnConnectionChanged;
        _redis.ConnectionRestored += OnConnectionChanged;
    }

    /// <summary>True once loaded, until the next connection change.</summary>
    public bool Loaded => _loaded;

    /// <summary>
    /// Subscribes (once), then runs <paramref name="load"/> against each connected primary; true when this call made the
    /// mirror complete. One load at a time: a call while loaded or during another load returns false at once. A Redis
    /// error or timeout leaves it incomplete and is passed to <paramref name="failed"/> (the owner reads Redis meanwhile).
    /// </summary>
    public async Task<bool> LoadAsync(Func<IServer, IDatabase, Task> load, Action<Exception>? failed = null)
    {
        ArgumentNullException.ThrowIfNull(load);
        if (_loaded || !await _loading.WaitAsync(0))
        {
            return false;
        }
        try
        {
            var generation = Interlocked.Read(ref _generation);
            var subscriber = _redis.GetSubscriber();
            if (!_subscribed)
            {
                await subscriber.SubscribeAsync(_channel, (_, message) => _onAnnouncement(message));
                _subscribed = true;
            }
            if (!subscriber.IsConnected(_channel))
            {
                return false;
            }
            var database = _redis.GetDatabase();
            foreach (var server in _redis.GetServers().Where(s => s.IsConnected && !s.IsReplica))
            {
                await load(server, database);
            }
            // Only if no connection trouble happened meanwhile (it would have moved the generation on).
            _loaded = Interlocked.Read(ref _generation) == generation;
            return _loaded;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            failed?.Invoke(e);
            return false;
        }
        finally
        {
            _loading.Release();
        }
    }

    private void OnConnectionChanged(object? sender, ConnectionFailedEventArgs e)
    {
        Interlocked.Increment(ref _generation);
        _loaded = false;
    }

    public void Dispose()
    {
        _redis.ConnectionFailed -= OnConnectionChanged;
        _redis.ConnectionRestored -= OnConnectionChanged;
        _loading.Dispose();
    }
}
