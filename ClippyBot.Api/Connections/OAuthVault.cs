using ClippyBot.Api.Data;
using ClippyBot.Api.Encryption;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Connections;

/// <summary>
/// Stores and opens OAuth connections' tokens. Tokens exist in plaintext only in memory, for the moment they are used; no
/// endpoint returns them and nothing logs them. (Plugins will reach them through a permission-gated host call.)
/// </summary>
public sealed class OAuthVault(ApiDbContext db, EnvelopeEncryptor encryptor) : IReencryptable
{
    public const string Table = "oauth_connections";

    public string Name => Table;

    public sealed record Tokens(string AccessToken, string? RefreshToken, DateTimeOffset? ExpiresAt);

    public async Task<OAuthConnection> StoreAsync(Guid workspaceId, string provider, IReadOnlyList<string> scopes, Tokens tokens, string createdBy, DateTimeOffset now, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var connection = new OAuthConnection
        {
            Id = Guid.CreateVersion7(), WorkspaceId = workspaceId, Provider = provider, Scopes = [.. scopes], ExpiresAt = tokens.ExpiresAt,
            AccessToken = [], CreatedAt = now, CreatedBy = createdBy,
        };
        await SealAsync(connection, tokens.AccessToken, tokens.RefreshToken, ct);
        db.OAuthConnections.Add(connection);
        await db.SaveChangesAsync(ct);
        return connection;
    }

    /// <summary>The connection's tokens, decrypted in memory; null when the workspace has no such connection.</summary>
    public async Task<Tokens?> OpenAsync(Guid workspaceId, Guid connectionId, CancellationToken ct)
    {
        var connection = await db.OAuthConnections.AsNoTracking().SingleOrDefaultAsync(c => c.Id == connectionId && c.WorkspaceId == workspaceId, ct);
        if (connection is null)
        {
            return null;
        }
        var access = await encryptor.DecryptStringAsync(connection.AccessToken, Context(connection, "access_token"), ct);
        var refresh = connection.RefreshToken is null ? null : await encryptor.DecryptStringAsync(connection.RefreshToken, Context(connection, "refresh_token"), ct);
        return new Tokens(access, refresh, connection.ExpiresAt);
    }

    public async Task<(Guid? LastId, int Reencrypted, IReadOnlyList<Guid> Unreadable)> ReencryptBatchAsync(Guid target, Guid after, int batchSize, CancellationToken ct)
    {
        var rows = await db.OAuthConnections.Where(c => c.Id > after).OrderBy(c => c.Id).Take(batchSize).ToListAsync(ct);
        var moved = 0;
        var unreadable = new List<Guid>();
        foreach (var row in rows.Where(r => r.KeyId != target))
        {
            string access;
            string? refresh;
            try
            {
                access = await encryptor.DecryptStringAsync(row.AccessToken, Context(row, "access_token"), ct);
                refresh = row.RefreshToken is null ? null : await encryptor.DecryptStringAsync(row.RefreshToken, Context(row, "refresh_token"), ct);
            }
            catch (System.Security.Cryptography.CryptographicException)
            {
                unreadable.Add(row.Id);
                continue;
            }
            await SealAsync(row, access, refresh, ct, target);
            moved++;
        }
        return (rows.Count == 0 ? null : rows[^1].Id, moved, unreadable);
    }

    public async Task<Dictionary<Guid, int>> CountByKeyAsync(CancellationToken ct)
    {
        return await db.OAuthConnections.GroupBy(c => c.KeyId).Select(g => new { g.Key, Count = g.Count() }).ToDictionaryAsync(g => g.Key, g => g.Count, ct);
    }

    /// <summary>Seals both tokens under the current data key (or <paramref name="key"/>, for the rotation job).</summary>
    private async Task SealAsync(OAuthConnection connection, string access, string? refresh, CancellationToken ct, Guid? key = null)
    {
        connection.AccessToken = await encryptor.EncryptStringAsync(access, Context(connection, "access_token"), ct, key);
        connection.RefreshToken = refresh is null ? null : await encryptor.EncryptStringAsync(refresh, Context(connection, "refresh_token"), ct, key);
        connection.KeyId = Envelope.KeyIdOf(connection.AccessToken);
    }

    private static EnvelopeContext Context(OAuthConnection c, string column) => new(Table, column, c.Id, c.WorkspaceId);
}
