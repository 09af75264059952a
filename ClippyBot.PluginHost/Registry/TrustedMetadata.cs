using ClippyBot.PluginHost.Data;
using ClippyBot.Tuf;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.PluginHost.Registry;

/// <summary>A TUF role's metadata this PluginHost trusts (pluginsdb): its memory against rollback across restarts.</summary>
public sealed class TrustedMetadata
{
    public required string Role { get; set; }
    public long Version { get; set; }
    /// <summary>The key ids that signed it, sorted, comma-separated.</summary>
    public string Signers { get; set; } = "";
    public required byte[] Content { get; set; }
    public DateTimeOffset SavedAt { get; set; }
}

/// <summary>
/// The trust store in pluginsdb, shared by the replicas. A save never replaces a newer version signed by the same keys
/// (a slow replica must not lower what the others already trust); a root rotation's deletions are the one way down.
/// </summary>
public sealed class DatabaseTrustStore(PluginsDbContext db, TimeProvider time) : ITufTrustStore
{
    public Task<byte[]?> LoadAsync(string role, CancellationToken ct) =>
        db.TrustedMetadata.AsNoTracking().Where(m => m.Role == role).Select(m => m.Content).FirstOrDefaultAsync(ct);

    public async Task SaveAsync(string role, byte[] metadata, CancellationToken ct)
    {
        var envelope = TufEnvelope.Parse(metadata, role);
        var version = envelope.Body["version"]!.GetValue<long>();
        var signers = string.Join(",", envelope.Signatures.Select(s => s.KeyId).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal));
        // Newer or equal replaces; so does anything signed by other keys (after a rotation a version fast-forwarded with a
        // stolen key must not block the rightful ones, and the updater deletes such rows anyway).
        await db.Database.ExecuteSqlAsync($"""
            INSERT INTO "TrustedMetadata" ("Role", "Version", "Signers", "Content", "SavedAt") VALUES ({role}, {version}, {signers}, {metadata}, {time.GetUtcNow()})
            ON CONFLICT ("Role") DO UPDATE SET "Version" = EXCLUDED."Version", "Signers" = EXCLUDED."Signers", "Content" = EXCLUDED."Content", "SavedAt" = EXCLUDED."SavedAt"
            WHERE "TrustedMetadata"."Version" <= EXCLUDED."Version" OR "TrustedMetadata"."Signers" <> EXCLUDED."Signers"
            """, ct);
    }

    public Task DeleteAsync(string role, CancellationToken ct) => db.TrustedMetadata.Where(m => m.Role == role).ExecuteDeleteAsync(ct);
}
