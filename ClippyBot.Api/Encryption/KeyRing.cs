using ClippyBot.Security;
using System.Collections.Concurrent;
using System.Security.Cryptography;
using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Encryption;

/// <summary>
/// The data keys, unwrapped in memory only. The newest key (by creation) encrypts; any known key decrypts. A rotation on one
/// replica is announced on Redis, so the others switch at once; they also re-read the ring every
/// <see cref="EncryptionOptions.KeyRingRefreshInterval"/> and when they meet a ciphertext under a key they do not hold yet.
/// The first key is created on first use.
/// </summary>
public sealed class KeyRing(IServiceScopeFactory scopes, IOptions<EncryptionOptions> options, TimeProvider time, StackExchange.Redis.IConnectionMultiplexer redis) : IDisposable
{
    private static readonly StackExchange.Redis.RedisChannel RotatedChannel = StackExchange.Redis.RedisChannel.Literal("clippybot:api:data-key-rotated");
    private int _subscribed;
    private readonly byte[] _kek = DeriveKek(options.Value.KeyEncryptionKey);
    private readonly ConcurrentDictionary<Guid, byte[]> _keys = new();
    private readonly SemaphoreSlim _refresh = new(1, 1);
    private (Guid Id, DateTimeOffset LoadedAt)? _current;

    public static byte[] DeriveKek(string secret) =>
        string.IsNullOrEmpty(secret) || secret.Length < EncryptionOptions.MinimumSecretLength
            ? throw new InvalidOperationException($"Encryption:KeyEncryptionKey must be a random secret of at least {EncryptionOptions.MinimumSecretLength} characters.")
            : KeyDerivation.DeriveKey(secret, "clippybot-api", "kek");

    /// <summary>The key new data is encrypted with.</summary>
    public async Task<(Guid Id, byte[] Key)> CurrentAsync(CancellationToken ct)
    {
        if (Interlocked.Exchange(ref _subscribed, 1) == 0)
        {
            // Marks the ring stale; the next encryption re-reads it.
            await redis.GetSubscriber().SubscribeAsync(RotatedChannel, (_, _) => _current = null);
        }
        if (_current is not { } current || time.GetUtcNow() - current.LoadedAt > options.Value.KeyRingRefreshInterval)
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
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
        var id = await CreateKeyAsync(db, ct);
        await RefreshAsync(ct);
        await redis.GetSubscriber().PublishAsync(RotatedChannel, id.ToString());
        return id;
    }

    private async Task<Guid> CreateKeyAsync(ApiDbContext db, CancellationToken ct)
    {
        var id = Guid.CreateVersion7();
        var key = RandomNumberGenerator.GetBytes(32);
        var kekId = options.Value.KeyEncryptionKeyId;
        db.DataKeys.Add(new DataKey { Id = id, KekId = kekId, WrappedKey = Envelope.WrapKey(_kek, kekId, id, key), CreatedAt = time.GetUtcNow() });
        await db.SaveChangesAsync(ct);
        return id;
    }

    private async Task RefreshAsync(CancellationToken ct)
    {
        await _refresh.WaitAsync(ct);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
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
                if (row.KekId != options.Value.KeyEncryptionKeyId)
                {
                    throw new CryptographicException($"Data key {row.Id} is wrapped by KEK '{row.KekId}', which this deployment does not hold.");
                }
                _keys[row.Id] = Envelope.UnwrapKey(_kek, row.KekId, row.Id, row.WrappedKey);
            }
            _current = (rows[^1].Id, time.GetUtcNow());
        }
        finally
        {
            _refresh.Release();
        }
    }

    public void Dispose() => _refresh.Dispose();
}
