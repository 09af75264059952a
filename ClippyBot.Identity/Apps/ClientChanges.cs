using ClippyBot.Identity.Oidc;
using ClippyBot.ServiceDefaults.Redis;
using StackExchange.Redis;

namespace ClippyBot.Identity.Apps;

/// <summary>
/// A client registration changed somewhere: every replica drops its cached copy at once (announced through Redis), so a
/// rotated secret, a deleted or suspended app takes effect everywhere within the announcement's delivery, not the
/// cache's 30 seconds. After a lost connection (announcements may have been missed) the whole cache is dropped.
/// </summary>
public sealed partial class ClientChanges : IHostedService, IDisposable
{
    public const string Channel = "clippybot:oidc-clients";
    private readonly IConnectionMultiplexer _redis;
    private readonly ClientLookupCache _cache;
    private readonly RedisMirror _mirror;
    private readonly ILogger<ClientChanges> _logger;

    public ClientChanges(IConnectionMultiplexer redis, ClientLookupCache cache, ILogger<ClientChanges> logger)
    {
        _redis = redis;
        _cache = cache;
        _logger = logger;
        _mirror = new RedisMirror(redis, RedisChannel.Literal(Channel), message => _cache.Evict(message.ToString()));
    }

    /// <summary>Listening (and the cache trustworthy) — false after a connection change until <see cref="ListenAsync"/> ran again.</summary>
    public bool Listening => _mirror.Loaded;

    public Task StartAsync(CancellationToken cancellationToken) => ListenAsync();

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Subscribes (again) and drops everything cached while not listening.</summary>
    public Task ListenAsync() => _mirror.LoadAsync((_, _) =>
    {
        _cache.Clear();
        return Task.CompletedTask;
    }, e => LogListenFailed(e.GetType().Name));

    /// <summary>Drops <paramref name="clientId"/> here and tells every other replica to.</summary>
    public async Task AnnounceAsync(string clientId)
    {
        _cache.Evict(clientId);
        try
        {
            await _redis.GetSubscriber().PublishAsync(RedisChannel.Literal(Channel), clientId);
        }
        catch (RedisException e)
        {
            // The others' copies expire within the cache's lifetime (30 s) anyway.
            LogAnnounceFailed(e.GetType().Name);
        }
    }

    public void Dispose() => _mirror.Dispose();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client changes: not listening ({Error}); cached clients expire within 30 s meanwhile")]
    private partial void LogListenFailed(string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client changes: a change could not be announced ({Error}); other replicas see it within 30 s")]
    private partial void LogAnnounceFailed(string error);
}
