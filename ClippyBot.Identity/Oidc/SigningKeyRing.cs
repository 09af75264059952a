using ClippyBot.Security;
using System.Security.Cryptography;
using ClippyBot.Identity.Crypto;
using ClippyBot.Identity.Data;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Microsoft.IdentityModel.Tokens;

namespace ClippyBot.Identity.Oidc;

/// <summary>The keys OpenIddict uses right now: the active signing key first, then every other published one.</summary>
public sealed record KeyRingSnapshot(IReadOnlyList<ECDsaSecurityKey> SigningKeys, SymmetricSecurityKey EncryptionKey, string Fingerprint);

/// <summary>
/// Persisted, sealed, rotating server keys shared by every replica through the database. Rotation is by timestamps
/// (see <see cref="SigningKeyEntity"/>): the next key is published <see cref="OidcOptions.SigningKeyPublishAhead"/>
/// before it signs, and the retired one stays published for <see cref="OidcOptions.SigningKeyRetention"/>.
/// A change of keys fires a change token that makes OpenIddict rebuild its options.
/// </summary>
public sealed class SigningKeyRing(IServiceScopeFactory scopes, MigrationStatus<IdentityDataContext> migrations, TimeProvider time, IOptions<OidcOptions> options) : IDisposable
{
    private const string SigningUse = "sig";
    private const string EncryptionUse = "enc";
    private const long AdvisoryLockId = 0x436C697070794B31; // "ClippyK1"

    private readonly OidcOptions _options = options.Value;
    private readonly KeyProtector _protector = new(OidcOptions.DeriveKey(options.Value.KeyEncryptionKey, "key-encryption"), OidcOptions.Scope);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile KeyRingSnapshot? _current;
    private CancellationTokenSource _changed = new();
    private CancellationTokenSource _validationChanged = new();

    /// <summary>The current keys; the first call loads them (creating the first keys of a new deployment).</summary>
    public KeyRingSnapshot Current => _current ?? LoadBlocking();

    public IChangeToken GetChangeToken() => new CancellationChangeToken(_changed.Token);

    /// <summary>
    /// Fires after <see cref="GetChangeToken"/>'s listeners ran: Identity's own token validation copies the server's keys
    /// when its options are built, so it must rebuild after the server's options, never before (it would copy the old keys).
    /// </summary>
    public IChangeToken GetValidationChangeToken() => new CancellationChangeToken(_validationChanged.Token);

    /// <summary>Creates keys that are due, drops expired ones, and reloads; fires the change token if anything changed.</summary>
    public Task RefreshAsync(CancellationToken ct) => RefreshAsync(rotateNow: false, ct);

    /// <summary>
    /// An operator's rotation (a key suspected exposed): every signing key stops signing now and a new one signs from now
    /// on. Keys that signed stay published only until the access, identity tokens and codes they signed have expired
    /// (<see cref="OidcOptions.RotatedKeyRetention"/>), so a stolen key is useless from then on; refresh tokens they signed
    /// stop working then (those people sign in again). Keys published ahead but never used are dropped. Other replicas switch at their next refresh
    /// (<see cref="OidcOptions.KeyRingRefreshInterval"/>); resource servers fetch the new key when they first meet it.
    /// </summary>
    public async Task<string> RotateNowAsync(CancellationToken ct)
    {
        await RefreshAsync(rotateNow: true, ct);
        return _current!.SigningKeys[0].KeyId;
    }

    private async Task RefreshAsync(bool rotateNow, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            var next = await EnsureAndLoadAsync(rotateNow, ct);
            var previous = _current;
            _current = next;
            if (previous is not null && previous.Fingerprint != next.Fingerprint)
            {
                var old = Interlocked.Exchange(ref _changed, new CancellationTokenSource());
                await old.CancelAsync();
                old.Dispose();
                var oldValidation = Interlocked.Exchange(ref _validationChanged, new CancellationTokenSource());
                await oldValidation.CancelAsync();
                oldValidation.Dispose();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        _gate.Dispose();
        _changed.Dispose();
        _validationChanged.Dispose();
    }

    private KeyRingSnapshot LoadBlocking()
    {
        // OpenIddict builds its options synchronously; this runs once per process, off any synchronization context.
        RefreshAsync(CancellationToken.None).GetAwaiter().GetResult();
        return _current!;
    }

    private async Task<KeyRingSnapshot> EnsureAndLoadAsync(bool rotateNow, CancellationToken ct)
    {
        // The first request may arrive while the schema is still migrating in the background.
        await migrations.WhenCompleted(ct).WaitAsync(TimeSpan.FromMinutes(2), ct);
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();

        var strategy = db.Database.CreateExecutionStrategy();
        var rows = await strategy.ExecuteAsync(async () =>
        {
            await using var tx = await db.Database.BeginTransactionAsync(ct);
            // One replica at a time decides about new keys.
            await db.Database.ExecuteSqlRawAsync($"SELECT pg_advisory_xact_lock({AdvisoryLockId})", ct);
            var now = time.GetUtcNow();
            var keys = await db.SigningKeys.ToListAsync(ct);

            db.SigningKeys.RemoveRange(keys.Where(k => k.ExpiresAt <= now));
            var live = keys.Where(k => k.ExpiresAt > now).ToList();

            // A rotation right after another (a retried call, a double click) keeps the key that has just begun signing:
            // retries cannot pile up keys, and at most one key a minute is made this way.
            if (rotateNow && live.Any(k => k.Use == SigningUse && k.RetiresAt <= now && k.RetiresAt > now - TimeSpan.FromMinutes(1)))
            {
                rotateNow = false;
            }
            if (rotateNow)
            {
                var unused = live.Where(k => k.Use == SigningUse && k.ActivatesAt > now).ToList();
                db.SigningKeys.RemoveRange(unused);
                live.RemoveAll(unused.Contains);
                foreach (var key in live.Where(k => k.Use == SigningUse && k.RetiresAt > now))
                {
                    key.RetiresAt = now;
                }
                // A key rotated away may be exposed: published only while access tokens it signed can live, not for the
                // refresh tokens' 14 days (its refresh tokens stop working then: those people sign in again).
                foreach (var key in live.Where(k => k.Use == SigningUse && k.ExpiresAt > now + _options.RotatedKeyRetention))
                {
                    key.ExpiresAt = now + _options.RotatedKeyRetention;
                }
            }
            var signing = live.Where(k => k.Use == SigningUse).ToList();
            var active = signing.Where(k => k.ActivatesAt <= now && now < k.RetiresAt).MaxBy(k => k.ActivatesAt);
            if (active is null)
            {
                active = NewSigningKey(now, now);
                live.Add(active);
                db.SigningKeys.Add(active);
            }
            var hasSuccessor = signing.Any(k => k.ActivatesAt >= active.RetiresAt);
            if (!hasSuccessor && active.RetiresAt - now <= _options.SigningKeyPublishAhead)
            {
                var successor = NewSigningKey(now, active.RetiresAt);
                live.Add(successor);
                db.SigningKeys.Add(successor);
            }
            if (!live.Any(k => k.Use == EncryptionUse))
            {
                var id = NewKeyId();
                var enc = new SigningKeyEntity
                {
                    Id = id,
                    Use = EncryptionUse,
                    Algorithm = "A256KW",
                    ProtectedKey = _protector.Seal(RandomNumberGenerator.GetBytes(32), EncryptionUse, id),
                    PublishedAt = now,
                    ActivatesAt = now,
                    RetiresAt = DateTimeOffset.MaxValue,
                    ExpiresAt = DateTimeOffset.MaxValue,
                };
                live.Add(enc);
                db.SigningKeys.Add(enc);
            }
            await db.SaveChangesAsync(ct);
            await tx.CommitAsync(ct);
            return (now, live);
        });

        return Build(rows.now, rows.live);
    }

    private KeyRingSnapshot Build(DateTimeOffset now, List<SigningKeyEntity> live)
    {
        var published = live
            .Where(k => k.Use == SigningUse && k.PublishedAt <= now && now < k.ExpiresAt)
            // Active key first: OpenIddict signs with the first suitable key and publishes all of them.
            .OrderByDescending(k => k.ActivatesAt <= now && now < k.RetiresAt)
            .ThenByDescending(k => k.ActivatesAt)
            .ToList();
        var encryption = live.Where(k => k.Use == EncryptionUse).OrderBy(k => k.ActivatesAt).First();
        var fingerprint = string.Join(',', published.Select(k => $"{k.Id}:{(k.ActivatesAt <= now && now < k.RetiresAt ? "active" : "published")}")) + "|" + encryption.Id;
        // Nothing changed (the usual 5-minute refresh): keep the keys already loaded instead of unsealing them again.
        if (_current is { } current && current.Fingerprint == fingerprint)
        {
            return current;
        }
        var signingKeys = published.Select(k =>
        {
            var ecdsa = ECDsa.Create();
            ecdsa.ImportPkcs8PrivateKey(_protector.Open(k.ProtectedKey, SigningUse, k.Id), out _);
            return new ECDsaSecurityKey(ecdsa) { KeyId = k.Id };
        }).ToList();
        var encryptionKey = new SymmetricSecurityKey(_protector.Open(encryption.ProtectedKey, EncryptionUse, encryption.Id)) { KeyId = encryption.Id };
        return new KeyRingSnapshot(signingKeys, encryptionKey, fingerprint);
    }

    private SigningKeyEntity NewSigningKey(DateTimeOffset now, DateTimeOffset activatesAt)
    {
        var id = NewKeyId();
        using var ecdsa = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var pkcs8 = ecdsa.ExportPkcs8PrivateKey();
        try
        {
            var retiresAt = activatesAt + _options.SigningKeyRotationPeriod;
            return new SigningKeyEntity
            {
                Id = id,
                Use = SigningUse,
                Algorithm = SecurityAlgorithms.EcdsaSha256,
                ProtectedKey = _protector.Seal(pkcs8, SigningUse, id),
                PublishedAt = now,
                ActivatesAt = activatesAt,
                RetiresAt = retiresAt,
                ExpiresAt = retiresAt + _options.SigningKeyRetention,
            };
        }
        finally
        {
            CryptographicOperations.ZeroMemory(pkcs8);
        }
    }

    private static string NewKeyId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(12));
}
