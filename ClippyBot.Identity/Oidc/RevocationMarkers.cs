using ClippyBot.Contracts;
using ClippyBot.Identity.Data;
using ClippyBot.ServiceDefaults;
using Microsoft.EntityFrameworkCore;
using StackExchange.Redis;

namespace ClippyBot.Identity.Oidc;

/// <summary>A revocation marker as Identity keeps it (the key of <see cref="RevocationKeys"/>, its Unix-seconds value, until when).</summary>
public sealed class StoredRevocationMarker
{
    public required string Key { get; set; }

    public long Value { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}

/// <summary>
/// Publishes the revocation markers of <see cref="RevocationKeys"/> for resource servers. Each marker is written to
/// Identity's database first (the durable record), then to Redis and announced. A cache that restarts empty, or a write
/// that failed, is repaired by <see cref="RevocationRepublisher"/> from that record — a restart never un-revokes a token.
/// </summary>
public sealed class RevocationMarkers(IConnectionMultiplexer redis, IServiceScopeFactory scopes, TimeProvider time, Microsoft.Extensions.Options.IOptions<OidcOptions> options)
{
    public Task PublishAsync(string subject) => SetMarkersAsync([RevocationKeys.RevokedBefore(subject)]);

    public Task PublishSessionAsync(string sessionId) => SetMarkersAsync([RevocationKeys.RevokedSession(sessionId)]);

    /// <summary>One marker per ended session, without the subject's (their other sessions go on).</summary>
    public Task PublishSessionsAsync(IEnumerable<Guid> sessionIds) =>
        SetMarkersAsync([.. sessionIds.Select(id => RevocationKeys.RevokedSession(id.ToString()))]);

    /// <summary>The subject's marker and one per ended session (a session's marker needs no clock comparison at all).</summary>
    public Task PublishAllAsync(string subject, IEnumerable<Guid> sessionIds) =>
        SetMarkersAsync([RevocationKeys.RevokedBefore(subject), .. sessionIds.Select(id => RevocationKeys.RevokedSession(id.ToString()))]);

    /// <summary>
    /// Resource servers refuse a token whose <c>iat</c> is not later than the subject's marker (whole seconds). A token
    /// minted in the marker's own second would be refused for its whole life, so issuance right after a revocation waits
    /// for the next second — under a second, and only then; otherwise this is one Redis read.
    /// </summary>
    public async Task WaitUntilPastMarkerAsync(string subject, CancellationToken ct)
    {
        var value = await redis.GetDatabase().StringGetAsync(RevocationKeys.RevokedBefore(subject));
        if (value.HasValue && long.TryParse(value.ToString(), out var marker))
        {
            // A little past the boundary: timers may fire a hair early, and iat must land in the next second.
            var wait = DateTimeOffset.FromUnixTimeSeconds(marker + 1) + TimeSpan.FromMilliseconds(20) - time.GetUtcNow();
            if (wait > TimeSpan.Zero && wait <= TimeSpan.FromSeconds(2))
            {
                await Task.Delay(wait, time, ct);
            }
        }
    }

    /// <summary>Writes <paramref name="marker"/> to Redis unless an equal or later one is there, and announces it; true if written.</summary>
    internal async Task<bool> RestoreAsync(StoredRevocationMarker marker)
    {
        var left = marker.ExpiresAt - time.GetUtcNow();
        if (left <= TimeSpan.Zero || !await SetIfLaterAsync(marker.Key, marker.Value, left))
        {
            return false;
        }
        await AnnounceAsync(marker.Key, marker.Value, left);
        return true;
    }

    // One step in Redis: a marker only ever moves later. Two events racing, or a restore meeting a newer value, can never
    // leave the earlier time in place (which would accept tokens issued between the two).
    private const string SetIfLaterScript = """
        local current = redis.call('GET', KEYS[1])
        if (not current) or tonumber(current) < tonumber(ARGV[1]) then
          redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
          return 1
        end
        return 0
        """;

    private async Task<bool> SetIfLaterAsync(string key, long value, TimeSpan lifetime) =>
        (long)await redis.GetDatabase().ScriptEvaluateAsync(SetIfLaterScript, [key], [value, (long)lifetime.TotalMilliseconds]) == 1;

    // Outlives every access token issued before the event, then expires by itself; stored durably first, announced after
    // it is in Redis, so a mirror that hears the announcement can read it (docs/revocation.md).
    private async Task SetMarkersAsync(IReadOnlyList<string> keys)
    {
        var now = time.GetUtcNow();
        var value = now.ToUnixTimeSeconds();
        var lifetime = options.Value.AccessTokenLifetime + TimeSpan.FromMinutes(5);
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
            var expiresAt = now + lifetime;
            foreach (var key in keys)
            {
                await db.Database.ExecuteSqlAsync($"""
                    INSERT INTO "RevocationMarkers" ("Key", "Value", "ExpiresAt") VALUES ({key}, {value}, {expiresAt})
                    ON CONFLICT ("Key") DO UPDATE SET "Value" = GREATEST("RevocationMarkers"."Value", EXCLUDED."Value"),
                                                      "ExpiresAt" = GREATEST("RevocationMarkers"."ExpiresAt", EXCLUDED."ExpiresAt")
                    """);
            }
        }
        foreach (var key in keys)
        {
            await SetIfLaterAsync(key, value, lifetime);
            await AnnounceAsync(key, value, lifetime);
        }
    }

    private Task<long> AnnounceAsync(string key, long value, TimeSpan lifetime) =>
        redis.GetSubscriber().PublishAsync(RedisChannel.Literal(RevocationKeys.AnnouncementChannel), RevocationKeys.Announcement(key, value, lifetime));
}

/// <summary>
/// Puts Identity's durable markers back into Redis whenever the connection is restored (the cache may have restarted
/// empty) and every <see cref="RevocationOptions.RepublishInterval"/> regardless (a write or announcement that failed),
/// and forgets markers that have expired.
/// </summary>
public sealed partial class RevocationRepublisher(
    IConnectionMultiplexer redis, IServiceScopeFactory scopes, RevocationMarkers markers, TimeProvider time,
    Microsoft.Extensions.Options.IOptions<RevocationOptions> options, ILogger<RevocationRepublisher> logger) : BackgroundService
{
    private readonly SemaphoreSlim _wake = new(0, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        redis.ConnectionRestored += OnRestored;
        try
        {
            await scopes.CreateAsyncScope().ServiceProvider.GetRequiredService<ClippyBot.ServiceDefaults.Data.MigrationStatus<IdentityDataContext>>().WhenCompleted(stoppingToken);
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await RepublishAsync(stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
#pragma warning disable CA1031 // Whatever fails, the worker keeps running (an exception here would stop the host).
                catch (Exception e)
#pragma warning restore CA1031
                {
                    LogFailed(logger, e.GetType().Name);
                }
                try
                {
                    await _wake.WaitAsync(options.Value.RepublishInterval, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
        finally
        {
            redis.ConnectionRestored -= OnRestored;
        }
    }

    private void OnRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (_wake.CurrentCount == 0)
        {
            try
            {
                _wake.Release();
            }
            catch (SemaphoreFullException)
            {
                // Already woken.
            }
        }
    }

    /// <summary>Restores every unexpired marker missing from Redis; returns how many.</summary>
    public async Task<int> RepublishAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
        var now = time.GetUtcNow();
        await db.RevocationMarkers.Where(m => m.ExpiresAt <= now).ExecuteDeleteAsync(ct);
        var restored = 0;
        foreach (var marker in await db.RevocationMarkers.AsNoTracking().ToListAsync(ct))
        {
            restored += await markers.RestoreAsync(marker) ? 1 : 0;
        }
        if (restored > 0)
        {
            LogRestored(logger, restored);
        }
        return restored;
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }

    [LoggerMessage(LogLevel.Warning, "Restored {Count} revocation marker(s) missing from the cache")]
    private static partial void LogRestored(ILogger logger, int count);

    [LoggerMessage(LogLevel.Warning, "Revocation markers could not be re-published yet ({Error})")]
    private static partial void LogFailed(ILogger logger, string error);
}

public sealed class RevocationOptions
{
    public const string SectionName = "Revocation";

    /// <summary>How often Identity checks that every marker it holds is in the cache (it also does on every reconnect).</summary>
    public TimeSpan RepublishInterval { get; set; } = TimeSpan.FromSeconds(30);
}
