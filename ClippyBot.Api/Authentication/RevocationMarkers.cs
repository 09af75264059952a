using ClippyBot.Contracts;
using System.Collections.Concurrent;
using System.Security.Claims;
using ClippyBot.ServiceDefaults;
using ClippyBot.ServiceDefaults.Data;
using StackExchange.Redis;
using ClippyBot.ServiceDefaults.Redis;

namespace ClippyBot.Api.Authentication;

/// <summary>
/// The revocation markers Identity publishes (docs/revocation.md), mirrored in memory so a request costs no Redis round
/// trip: the mirror subscribes to the announcements first, then loads every marker present (SCAN), and from then on
/// applies each announcement as it arrives (milliseconds after the event). Until it is loaded — at start, and again
/// after any loss of the Redis connection, when announcements may have been missed — each request reads Redis itself
/// (one MGET) and fails closed if Redis does not answer. Only Identity writes markers (it alone holds them durably; the
/// Api's Redis user may only read them). When a person erases their account the Api announces the marker so every
/// replica refuses their tokens at once, even while Identity cannot be reached; Identity's part of the erasure then
/// writes the durable marker.
/// </summary>
public sealed partial class RevocationMarkers : IDisposable
{
    /// <summary>Outlives any access token (15 minutes) with room for a longer configured lifetime.</summary>
    private static readonly TimeSpan MarkerLifetime = TimeSpan.FromHours(1);
    private static readonly RedisChannel Channel = RedisChannel.Literal(RevocationKeys.AnnouncementChannel);

    private readonly IConnectionMultiplexer _redis;
    private readonly TimeProvider _time;
    private readonly ILogger<RevocationMarkers> _logger;
    private readonly ConcurrentDictionary<string, (long Value, DateTimeOffset Expires)> _markers = new(StringComparer.Ordinal);
    private readonly RedisMirror _mirror;
    private DateTimeOffset _sweptAt;

    public RevocationMarkers(IConnectionMultiplexer redis, TimeProvider time, ILogger<RevocationMarkers> logger)
    {
        _redis = redis;
        _time = time;
        _logger = logger;
        _mirror = new RedisMirror(redis, Channel, message =>
        {
            if (RevocationKeys.TryParseAnnouncement(message.ToString(), out var key, out var value, out var lifetime))
            {
                Apply(key, value, lifetime);
            }
        });
    }

    /// <summary>
    /// Raised for every subject-wide marker applied (announced or loaded): the subject and the Unix time before which
    /// everything they hold is revoked. The Api disables that person's API keys with it (see <see cref="ApiKeys.CreatorRevocation"/>).
    /// </summary>
    public event Action<string, long>? SubjectRevoked;

    /// <summary>Whether the in-memory mirror answers (false: each request reads Redis).</summary>
    public bool Mirrored => _mirror.Loaded;

    /// <summary>
    /// Applies the subject's marker here and announces it to the other replicas' mirrors (in memory; markers only ever move
    /// later, so an announcement can end tokens but never revive one). Nothing is written to Redis: the durable marker
    /// is Identity's.
    /// </summary>
    public async Task AnnounceAsync(string subject)
    {
        var key = RevocationKeys.RevokedBefore(subject);
        var value = _time.GetUtcNow().ToUnixTimeSeconds();
        Apply(key, value, MarkerLifetime);
        await _redis.GetSubscriber().PublishAsync(Channel, RevocationKeys.Announcement(key, value, MarkerLifetime));
    }

    /// <summary>Reads the subjects' markers from Redis and applies them here now (without waiting for the announcement).</summary>
    public async Task ApplyFromRedisAsync(IReadOnlyList<string> subjects)
    {
        ArgumentNullException.ThrowIfNull(subjects);
        foreach (var batch in subjects.Chunk(500))
        {
            var keys = batch.Select(s => (RedisKey)RevocationKeys.RevokedBefore(s)).ToArray();
            var values = await _redis.GetDatabase().StringGetAsync(keys);
            for (var i = 0; i < keys.Length; i++)
            {
                if (values[i].HasValue && long.TryParse(values[i].ToString(), out var marker))
                {
                    Apply(keys[i].ToString(), marker, MarkerLifetime);
                }
            }
        }
    }

    /// <summary>
    /// True when the token was issued before its subject's revocation time or its session was ended — or, for an API key,
    /// when its creator's sessions were all ended after it was created ("sign out everywhere" also ends their keys).
    /// </summary>
    /// <exception cref="RedisException">Redis cannot answer while the mirror is not loaded; the caller fails closed.</exception>
    public async Task<bool> IsRevokedAsync(ClaimsPrincipal principal)
    {
        ArgumentNullException.ThrowIfNull(principal);
        var key = ApiKeys.ApiKeyClaims.IsApiKey(principal);
        var subject = principal.FindFirstValue(key ? ApiKeys.ApiKeyClaims.CreatedBy : "sub");
        if (subject is null || !long.TryParse(principal.FindFirstValue(key ? ApiKeys.ApiKeyClaims.CreatedAt : "iat"), out var issuedAt))
        {
            return true; // not a token Identity issued for a subject
        }
        var sessionId = key ? null : principal.FindFirstValue("sid");
        long? revokedBefore;
        bool sessionEnded;
        if (_mirror.Loaded)
        {
            revokedBefore = Lookup(RevocationKeys.RevokedBefore(subject));
            sessionEnded = sessionId is not null && Lookup(RevocationKeys.RevokedSession(sessionId)) is not null;
        }
        else
        {
            _ = LoadAsync();
            var values = await _redis.GetDatabase().StringGetAsync(
                [RevocationKeys.RevokedBefore(subject), RevocationKeys.RevokedSession(sessionId ?? "none")]);
            // What Redis says, and what this replica already knew: a cache that restarted empty must not un-revoke
            // anything (Identity re-publishes from its database, but a request may come first).
            revokedBefore = Max(values[0].HasValue && long.TryParse(values[0].ToString(), out var marker) ? marker : null,
                Lookup(RevocationKeys.RevokedBefore(subject)));
            sessionEnded = sessionId is not null && (values[1].HasValue || Lookup(RevocationKeys.RevokedSession(sessionId)) is not null);
        }
        // iat has whole seconds: a token from the event's own second may predate the event, so it is refused too (see docs/revocation.md).
        return (revokedBefore is { } before && issuedAt <= before) || sessionEnded;
    }

    private static long? Max(long? a, long? b) => a is null ? b : b is null ? a : Math.Max(a.Value, b.Value);

    /// <summary>
    /// Reads every marker in Redis and applies it, loaded or not: an announcement lost without a connection change (the
    /// mirror would not know it missed one) is picked up within the reconcile interval.
    /// </summary>
    public async Task ReconcileAsync()
    {
        try
        {
            var database = _redis.GetDatabase();
            foreach (var server in _redis.GetServers().Where(s => s.IsConnected && !s.IsReplica))
            {
                await LoadMarkersAsync(server, database);
            }
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            LogLoadFailed(_logger, e.GetType().Name);
        }
    }

    /// <summary>Subscribes (once), then loads every marker; the mirror answers from then on.</summary>
    public async Task LoadAsync()
    {
        if (await _mirror.LoadAsync(LoadMarkersAsync, e => LogLoadFailed(_logger, e.GetType().Name)))
        {
            LogMirrored(_logger, _markers.Count);
        }
    }

    private async Task LoadMarkersAsync(IServer server, IDatabase database)
    {
        await foreach (var key in server.KeysAsync(database.Database, RevocationKeys.AllMarkersPattern, pageSize: 1000))
        {
            var value = database.StringGetAsync(key);
            var ttl = database.KeyTimeToLiveAsync(key);
            if ((await value).HasValue && long.TryParse((await value).ToString(), out var marker) && await ttl is { } left && left > TimeSpan.Zero)
            {
                Apply(key.ToString(), marker, left);
            }
        }
    }

    private void Apply(string key, long value, TimeSpan lifetime)
    {
        var now = _time.GetUtcNow();
        if (now - _sweptAt > TimeSpan.FromMinutes(1))
        {
            // Markers of people who never call again would otherwise stay: drop every expired one now and then.
            _sweptAt = now;
            foreach (var entry in _markers.Where(m => m.Value.Expires <= now))
            {
                _markers.TryRemove(entry);
            }
        }
        var expires = now + lifetime;
        // A later marker of the same key wins; an older announcement arriving late changes nothing.
        var raised = !_markers.TryGetValue(key, out var known) || value > known.Value;
        _markers.AddOrUpdate(key, (value, expires), (_, old) => value >= old.Value ? (value, expires) : old);
        // Keys are revoked once per new (or later) marker, not on every reconciliation of a known one.
        if (raised && key.StartsWith(RevocationKeys.RevokedBeforePrefix, StringComparison.Ordinal))
        {
            SubjectRevoked?.Invoke(key[RevocationKeys.RevokedBeforePrefix.Length..], value);
        }
    }

    private long? Lookup(string key)
    {
        if (!_markers.TryGetValue(key, out var marker))
        {
            return null;
        }
        if (marker.Expires > _time.GetUtcNow())
        {
            return marker.Value;
        }
        _markers.TryRemove(new KeyValuePair<string, (long, DateTimeOffset)>(key, marker));
        return null;
    }

    public void Dispose() => _mirror.Dispose();

    [LoggerMessage(LogLevel.Information, "Revocation markers mirrored in memory ({Count} present)")]
    private static partial void LogMirrored(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "Revocation markers could not be mirrored ({Error}); requests read Redis until they are")]
    private static partial void LogLoadFailed(ILogger logger, string error);
}

/// <summary>Reconciles the mirror with Redis every <c>Revocation:ReconcileInterval</c> (default 30 s; SCAN of the markers).</summary>
public sealed class RevocationReconciler(RevocationMarkers markers, IConfiguration configuration, TimeProvider time, ILogger<RevocationReconciler> logger)
    : PeriodicService(configuration, time, logger)
{
    protected override string IntervalKey => "Revocation:ReconcileInterval";

    protected override TimeSpan DefaultInterval => TimeSpan.FromSeconds(30);

    protected override Task RunOnceAsync(CancellationToken ct) => markers.ReconcileAsync();
}
