using ClippyBot.Security;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using ClippyBot.ServiceDefaults.Redis;

namespace ClippyBot.Api.Encryption;

/// <summary>
/// The data keys, unwrapped in memory only. The newest key (by creation) encrypts; any known key decrypts. A rotation on one
/// replica is announced on Redis, so the others switch at once; they also re-read the ring every
/// <see cref="EncryptionOptions.KeyRingRefreshInterval"/> and when they meet a ciphertext under a key they do not hold yet.
/// The first key is created on first use. The announcement is received through a <see cref="RedisMirror"/>: while it is
/// not subscribed (Redis down, or just reconnected) the ring is re-read on every use, never trusted to be current.
/// </summary>
public sealed class KeyRing : IDisposable
{
    private static readonly StackExchange.Redis.RedisChannel RotatedChannel = StackExchange.Redis.RedisChannel.Literal("clippybot:api:data-key-rotated");

    /// <summary>How old the ring may get while no announcement can arrive.</summary>
    private static readonly TimeSpan UnsubscribedMaxAge = TimeSpan.FromSeconds(1);

    private readonly IServiceScopeFactory _scopes;
    private readonly IOptions<EncryptionOptions> _options;
    private readonly TimeProvider _time;
    private readonly StackExchange.Redis.IConnectionMultiplexer _redis;
    private readonly RedisMirror _announcements;
    private readonly byte[] _kek;
    private readonly ConcurrentDictionary<Guid, byte[]> _keys = new();
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private (Guid Id, DateTimeOffset LoadedAt)? _current;

    public KeyRing(IServiceScopeFactory scopes, IOptions<EncryptionOptions> options, TimeProvider time, StackExchange.Redis.IConnectionMultiplexer redis)
    {
        _scopes = scopes;
        _options = options;
        _time = time;
        _redis = redis;
        _kek = DeriveKek(options.Value.KeyEncryptionKey);
        // An announced rotation marks the ring stale; the next encryption re-reads it.
        _announcements = new RedisMirror(redis, RotatedChannel, _ => _current = null);
    }

    public static byte[] DeriveKek(string secret) =>
        string.IsNullOrEmpty(secret) || secret.Length < EncryptionOptions.MinimumSecretLength
            ? throw new InvalidOperationException($"Encryption:KeyEncryptionKey must be a random secret of at least {EncryptionOptions.MinimumSecretLength} characters.")
            : KeyDerivation.DeriveKey(secret, "clippybot-api", "kek");

    /// <summary>The key new data is encrypted with.</summary>
    public async Task<(Guid Id, byte[] Key)> CurrentAsync(CancellationToken ct)
    {
        if (!_announcements.Loaded)
        {
            // (Re)subscribing: a rotation announced meanwhile may have been missed, so the ring is stale.
            await _announcements.LoadAsync((_, _) =>
            {
                _current = null;
                return Task.CompletedTask;
            });
        }
        var maxAge = _announcements.Loaded ? _options.Value.KeyRingRefreshInterval : UnsubscribedMaxAge;
        if (_current is not { } current || _time.GetUtcNow() - current.LoadedAt > maxAge)
        {
            await RefreshAsync(ct);
            current = _current!.Value;
        }
        return (current.Id, _keys[current.Id]);
    }

    public async Task<byte[]> GetAsync(Guid id, CancellationToken ct)
    {
        if (_keys.TryGetValue(id, out var key))
        {
            return key;
        }
        await RefreshAsync(ct);
        return _keys.TryGetValue(id, out key) ? key : throw new CryptographicException($"Data key {id} is unknown (destroyed, or from another deployment).");
    }

    /// <summary>Creates a new data key and makes it current on this replica (others follow within the refresh interval).</summary>
    public async Task<Guid> RotateAsync(CancellationToken ct)
    {
        await using var scope = _scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        var id = await CreateKeyAsync(db, ct);
        await RefreshAsync(ct);
        await _redis.GetSubscriber().PublishAsync(RotatedChannel, id.ToString());
        return id;
    }

    private async Task<Guid> CreateKeyAsync(ApiDbContext db, CancellationToken ct)
    {
        var id = Guid.CreateVersion7();
        var key = RandomNumberGenerator.GetBytes(32);
        var kekId = _options.Value.KeyEncryptionKeyId;
        db.DataKeys.Add(new DataKey { Id = id, KekId = kekId, WrappedKey = Envelope.WrapKey(_kek, kekId, id, key), CreatedAt = _time.GetUtcNow() });
        await db.SaveChangesAsync(ct);
        return id;
    }

    private async Task RefreshAsync(CancellationToken ct)
    {
        await _refresh.WaitAsync(ct);
        try
        {
            await using var scope = _scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
            var rows = await db.DataKeys.AsNoTracking().OrderBy(k => k.CreatedAt).ThenBy(k => k.Id).ToListAsync(ct);
            if (rows.Count == 0)
            {
                // First use: two replicas may both create one; the newest wins and both stay readable.
                await CreateKeyAsync(db, ct);
                rows = await db.DataKeys.AsNoTracking().OrderBy(k => k.CreatedAt).ThenBy(k => k.Id).ToListAsync(ct);
            }
            foreach (var row in rows.Where(r => !_keys.ContainsKey(r.Id)))
            {
                if (row.KekId != _options.Value.KeyEncryptionKeyId)
                {
                    throw new CryptographicException($"Data key {row.Id} is wrapped by KEK '{row.KekId}', which this deployment does not hold.");
                }
                _keys[row.Id] = Envelope.UnwrapKey(_kek, row.KekId, row.Id, row.WrappedKey);
            }
            _current = (rows[^1].Id, _time.GetUtcNow());
        }
        finally
        {
            _refresh.Release();
        }
    }

    public void Dispose()
    {
        _announcements.Dispose();
        _refresh.Dispose();
    }
}
