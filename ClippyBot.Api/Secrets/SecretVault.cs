using ClippyBot.Api.Data;
using ClippyBot.Api.Encryption;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Secrets;

/// <summary>Stores and opens workspace secrets. Values exist in plaintext only in memory, while a plugin invocation uses them.</summary>
public sealed class SecretVault(ApiDbContext db, EnvelopeEncryptor encryptor) : IReencryptable
{
    public const string Table = "workspace_secrets";
    private const string Column = "value";

    public string Name => Table;

    /// <summary>Creates the secret or replaces its value; true when it is new.</summary>
    public async Task<(WorkspaceSecret Secret, bool Created)> SetAsync(Guid workspaceId, string name, string value, string updatedBy, DateTimeOffset now, CancellationToken ct)
    {
        var secret = await db.WorkspaceSecrets.SingleOrDefaultAsync(s => s.WorkspaceId == workspaceId && s.Name == name, ct);
        var created = secret is null;
        secret ??= db.WorkspaceSecrets.Add(new WorkspaceSecret { Id = Guid.CreateVersion7(), WorkspaceId = workspaceId, Name = name, Value = [], UpdatedBy = updatedBy }).Entity;
        secret.UpdatedAt = now;
        secret.UpdatedBy = updatedBy;
        await SealAsync(secret, value, ct);
        await db.SaveChangesAsync(ct);
        return (secret, created);
    }

    /// <summary>The named secrets that exist in the workspace, decrypted in memory.</summary>
    public async Task<Dictionary<string, string>> OpenAsync(Guid workspaceId, IReadOnlyCollection<string> names, CancellationToken ct)
    {
        var opened = new Dictionary<string, string>(StringComparer.Ordinal);
        if (names.Count == 0)
        {
            return opened;
        }
        var rows = await db.WorkspaceSecrets.AsNoTracking().Where(s => s.WorkspaceId == workspaceId && names.Contains(s.Name)).ToListAsync(ct);
        foreach (var row in rows)
        {
            opened[row.Name] = await encryptor.DecryptStringAsync(row.Value, Context(row), ct);
        }
        return opened;
    }

    public async Task<(Guid? LastId, int Reencrypted, IReadOnlyList<Guid> Unreadable)> ReencryptBatchAsync(Guid target, Guid after, int batchSize, CancellationToken ct)
    {
        var rows = await db.WorkspaceSecrets.Where(s => s.Id > after).OrderBy(s => s.Id).Take(batchSize).ToListAsync(ct);
        var moved = 0;
        var unreadable = new List<Guid>();
        foreach (var row in rows.Where(r => r.KeyId != target))
        {
            try
            {
                await SealAsync(row, await encryptor.DecryptStringAsync(row.Value, Context(row), ct), ct, target);
                moved++;
            }
            catch (System.Security.Cryptography.CryptographicException)
            {
                unreadable.Add(row.Id);
            }
        }
        return (rows.Count == 0 ? null : rows[^1].Id, moved, unreadable);
    }

    public Task<Dictionary<Guid, int>> CountByKeyAsync(CancellationToken ct) =>
        db.WorkspaceSecrets.GroupBy(s => s.KeyId).Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Key, g => g.Count, ct);

    private async Task SealAsync(WorkspaceSecret secret, string value, CancellationToken ct, Guid? key = null)
    {
        secret.Value = await encryptor.EncryptStringAsync(value, Context(secret), ct, key);
        secret.KeyId = Envelope.KeyIdOf(secret.Value);
    }

    private static EnvelopeContext Context(WorkspaceSecret s) => new(Table, Column, s.Id, s.WorkspaceId);
}
