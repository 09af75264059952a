using System.Security.Cryptography;
using System.Text;
using ClippyBot.Api.Encryption;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.Privacy;

/// <summary>
/// Seals a person's data under their own key (crypto-shredding). Same envelope format as every other ciphertext of the
/// Api (<see cref="Envelope"/>): the key id in the header is the subject key's id, and the associated data names the
/// subject and where the value lives. Keys are unwrapped per request scope and never cached across requests, so a
/// shredded key is gone from every replica at once.
/// </summary>
public sealed class SubjectKeys(SubjectKeysDbContext db, IOptions<EncryptionOptions> options, TimeProvider time)
{
    private readonly Dictionary<string, (Guid Id, byte[] Key)?> _unwrapped = new(StringComparer.Ordinal);
    private byte[]? _kek;

    /// <summary>Seals <paramref name="value"/> for <paramref name="subject"/>; null when the subject was erased (nothing may be kept).</summary>
    public async Task<byte[]?> SealAsync(string subject, string value, string context, CancellationToken ct)
    {
        if (await GetOrCreateAsync(subject, ct) is not { } key)
        {
            return null;
        }
        return Envelope.Seal(key.Id, key.Key, Encoding.UTF8.GetBytes(value), AssociatedData(subject, context));
    }

    /// <summary>The value, or null when the subject's key has been shredded (or never existed).</summary>
    public async Task<string?> OpenAsync(string subject, byte[] sealedValue, string context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(sealedValue);
        if (await FindAsync(subject, ct) is not { } key || key.Id != Envelope.KeyIdOf(sealedValue))
        {
            return null;
        }
        return Encoding.UTF8.GetString(Envelope.Open(key.Key, sealedValue, AssociatedData(subject, context)));
    }

    /// <summary>Destroys the subject's key for good (idempotent); a tombstone stops a new key from being made for them.</summary>
    public async Task ShredAsync(string subject, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var kekId = options.Value.KeyEncryptionKeyId;
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO "SubjectKeys" ("SubjectId", "KeyId", "KekId", "WrappedKey", "CreatedAt", "ShreddedAt")
            VALUES ({subject}, {Guid.Empty}, {kekId}, NULL, {now}, {now})
            ON CONFLICT ("SubjectId") DO UPDATE SET "WrappedKey" = NULL, "ShreddedAt" = COALESCE("SubjectKeys"."ShreddedAt", EXCLUDED."ShreddedAt")
            """, ct);
        _unwrapped.Remove(subject);
    }

    public Task<bool> IsShreddedAsync(string subject, CancellationToken ct) =>
        db.SubjectKeys.AnyAsync(k => k.SubjectId == subject && k.WrappedKey == null, ct);

    private async Task<(Guid Id, byte[] Key)?> GetOrCreateAsync(string subject, CancellationToken ct)
    {
        if (await FindAsync(subject, ct) is { } existing)
        {
            return existing;
        }
        if (await db.SubjectKeys.AnyAsync(k => k.SubjectId == subject, ct))
        {
            return null; // shredded
        }
        var id = Guid.CreateVersion7();
        var key = RandomNumberGenerator.GetBytes(32);
        var kekId = options.Value.KeyEncryptionKeyId;
        var wrapped = Envelope.WrapSubjectKey(Kek, kekId, subject, id, key);
        // Two requests of one person may race to create the key: the first insert wins and both use it.
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO "SubjectKeys" ("SubjectId", "KeyId", "KekId", "WrappedKey", "CreatedAt")
            VALUES ({subject}, {id}, {kekId}, {wrapped}, {time.GetUtcNow()})
            ON CONFLICT ("SubjectId") DO NOTHING
            """, ct);
        _unwrapped.Remove(subject);
        return await FindAsync(subject, ct);
    }

    private async Task<(Guid Id, byte[] Key)?> FindAsync(string subject, CancellationToken ct)
    {
        if (_unwrapped.TryGetValue(subject, out var cached))
        {
            return cached;
        }
        var row = await db.SubjectKeys.AsNoTracking().SingleOrDefaultAsync(k => k.SubjectId == subject, ct);
        (Guid, byte[])? result = null;
        if (row is { WrappedKey: { } wrapped })
        {
            if (row.KekId != options.Value.KeyEncryptionKeyId)
            {
                throw new CryptographicException($"The key of a subject is wrapped by KEK '{row.KekId}', which this deployment does not hold.");
            }
            result = (row.KeyId, Envelope.UnwrapSubjectKey(Kek, row.KekId, subject, row.KeyId, wrapped));
        }
        // Only found keys are remembered: a missing one may be created by the next call.
        if (row is not null)
        {
            _unwrapped[subject] = result;
        }
        return result;
    }

    private byte[] Kek => _kek ??= KeyRing.DeriveKek(options.Value.KeyEncryptionKey);

    private static byte[] AssociatedData(string subject, string context) => Encoding.UTF8.GetBytes($"clippybot-api/v1/subject/{subject}/{context}");
}
