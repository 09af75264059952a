using ClippyBot.ServiceDefaults.Redis;
using StackExchange.Redis;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// An operator rotated the signing keys on one replica: every other replica re-reads the key ring at once (announced
/// through Redis) instead of at its next periodic refresh — so none keeps signing with the retired key, and every
/// replica publishes and accepts the new one. After a lost connection (an announcement may have been missed) each
/// replica re-reads the ring when it listens again.
/// </summary>
public sealed partial class SigningKeyChanges : IHostedService, IDisposable
{
    public const string Channel = "clippybot:oidc-keys";
    private readonly IConnectionMultiplexer _redis;
    private readonly SigningKeyRing _ring;
    private readonly RedisMirror _mirror;
    private readonly ILogger<SigningKeyChanges> _logger;

    public SigningKeyChanges(IConnectionMultiplexer redis, SigningKeyRing ring, ILogger<SigningKeyChanges> logger)
    {
        _redis = redis;
        _ring = ring;
        _logger = logger;
        _mirror = new RedisMirror(redis, RedisChannel.Literal(Channel), _ => { var refreshed = RefreshSoonAsync(); });
    }

    public Task StartAsync(CancellationToken cancellationToken) => _mirror.LoadAsync((_, _) => RefreshAsync(), e => LogListenFailed(e.GetType().Name));

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Tells every other replica to re-read the ring (this one already has).</summary>
    public async Task AnnounceAsync()
    {
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(Channel), "rotated");
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            // The others re-read the ring at their next periodic refresh (Oidc:KeyRingRefreshInterval) anyway.
            LogAnnounceFailed(e.GetType().Name);
        }
    }

    public void Dispose()
    {
        _mirror.Dispose();
        _one.Dispose();
    }

    private readonly SemaphoreSlim _one = new(1, 1);
    private int _pending;

    /// <summary>
    /// At most one re-read at a time and one more queued behind it: a burst of announcements (or of messages from whoever
    /// can publish on the channel) costs each replica two reads of the ring, not one per message.
    /// </summary>
    private async Task RefreshSoonAsync()
    {
        if (Interlocked.Exchange(ref _pending, 1) == 1)
        {
            return; // one is queued already; it reads the ring after this message was sent
        }
        await _one.WaitAsync();
        try
        {
            Interlocked.Exchange(ref _pending, 0);
            await RefreshAsync();
        }
        finally
        {
            _one.Release();
        }
    }

    private async Task RefreshAsync()
    {
        try
        {
            await _ring.RefreshAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Never fatal: the periodic refresh follows.
            LogRefreshFailed(e.GetType().Name);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Signing key changes: not listening ({Error}); this replica sees rotations at its periodic refresh meanwhile")]
    private partial void LogListenFailed(string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Signing key changes: a rotation could not be announced ({Error}); other replicas see it at their periodic refresh")]
    private partial void LogAnnounceFailed(string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Signing key changes: re-reading the key ring failed ({Error}); the periodic refresh follows")]
    private partial void LogRefreshFailed(string error);
}
