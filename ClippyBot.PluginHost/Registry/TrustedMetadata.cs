using ClippyBot.PluginHost.Data;
using ClippyBot.Tuf;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.PluginHost.Registry;

/// <summary>A TUF role's metadata this PluginHost trusts (pluginsdb): its memory against rollback across restarts.</summary>
public sealed class TrustedMetadata
{
    public required string Role { get; set; }
    public long Version { get; set; }
    public required byte[] Content { get; set; }
    public DateTimeOffset SavedAt { get; set; }
}

/// <summary>
/// The trust store in pluginsdb, shared by the replicas. A save never replaces a newer version than it brings (a slow
/// replica must not lower what the others already trust); a root rotation's deletions are the one way down.
/// </summary>
public sealed class DatabaseTrustStore(PluginsDbContext db, TimeProvider time) : ITufTrustStore
{
    public Task<byte[]?> LoadAsync(string role, CancellationToken ct) =>
        db.TrustedMetadata.AsNoTracking().Where(m => m.Role == role).Select(m => m.Content).FirstOrDefaultAsync(ct);

    public async Task SaveAsync(string role, byte[] metadata, CancellationToken ct)
    {
        var version = TufEnvelope.Parse(metadata, role).Body["version"]!.GetValue<long>();
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO "TrustedMetadata" ("Role", "Version", "Content", "SavedAt") VALUES ({role}, {version}, {metadata}, {time.GetUtcNow()})
            ON CONFLICT ("Role") DO UPDATE SET "Version" = EXCLUDED."Version", "Content" = EXCLUDED."Content", "SavedAt" = EXCLUDED."SavedAt"
            WHERE "TrustedMetadata"."Version" <= EXCLUDED."Version"
            """, ct);
    }

    public Task DeleteAsync(string role, CancellationToken ct) => db.TrustedMetadata.Where(m => m.Role == role).ExecuteDeleteAsync(ct);
}
