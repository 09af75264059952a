using System.Security.Cryptography;
using ClippyBot.Api.Data;
using ClippyBot.Api.Encryption;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Files;

/// <summary>Per-file keys: random, used once, kept only wrapped under the current data key (and re-wrapped on rotation).</summary>
public sealed class FileVault(ApiDbContext db, EnvelopeEncryptor encryptor) : IReencryptable
{
    public const string Table = "stored_files";

    public string Name => Table;

    public static byte[] NewFileKey() => RandomNumberGenerator.GetBytes(32);

    public async Task<(byte[] Wrapped, Guid KeyId)> WrapAsync(byte[] fileKey, Guid fileId, Guid workspaceId, CancellationToken ct, Guid? dataKey = null)
    {
        var wrapped = await encryptor.EncryptAsync(fileKey, Context(fileId, workspaceId), ct, dataKey);
        return (wrapped, Envelope.KeyIdOf(wrapped));
    }

    public Task<byte[]> UnwrapAsync(StoredFile file, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(file);
        return encryptor.DecryptAsync(file.WrappedKey, Context(file.Id, file.WorkspaceId), ct);
    }

    public async Task<(Guid? LastId, int Reencrypted, IReadOnlyList<Guid> Unreadable)> ReencryptBatchAsync(Guid target, Guid after, int batchSize, CancellationToken ct)
    {
        var rows = await db.StoredFiles.Where(f => f.Id > after).OrderBy(f => f.Id).Take(batchSize).ToListAsync(ct);
        var moved = 0;
        var unreadable = new List<Guid>();
        foreach (var row in rows.Where(r => r.KeyId != target))
        {
            byte[] key;
            try
            {
                key = await UnwrapAsync(row, ct);
            }
            catch (CryptographicException)
            {
                unreadable.Add(row.Id);
                continue;
            }
            (row.WrappedKey, row.KeyId) = await WrapAsync(key, row.Id, row.WorkspaceId, ct, target);
            CryptographicOperations.ZeroMemory(key);
            moved++;
        }
        return (rows.Count == 0 ? null : rows[^1].Id, moved, unreadable);
    }

    public Task<Dictionary<Guid, int>> CountByKeyAsync(CancellationToken ct) =>
        db.StoredFiles.GroupBy(f => f.KeyId).Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Key, g => g.Count, ct);

    private static EnvelopeContext Context(Guid fileId, Guid workspaceId) => new(Table, "file_key", fileId, workspaceId);
}
