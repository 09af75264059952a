using ClippyBot.ServiceDefaults.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace ClippyBot.Api.Privacy;

/// <summary>
/// A person's own data key: what the Api keeps about them that cannot be deleted at once (the append-only audit chain) is
/// sealed under it, so destroying it erases that data everywhere, backups of <c>apidb</c> included. A shredded key keeps
/// its row with no key material, so none can be created for the subject again.
/// </summary>
public sealed class SubjectKey
{
    /// <summary>The person's subject (<c>sub</c>) at Identity.</summary>
    public required string SubjectId { get; set; }

    public Guid KeyId { get; set; }

    public required string KekId { get; set; }

    /// <summary>The 256-bit key wrapped under the KEK; null once shredded.</summary>
    public byte[]? WrappedKey { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset? ShreddedAt { get; set; }
}

/// <summary>
/// The subject-key store (<c>subjectkeysdb</c>), apart from <c>apidb</c> on purpose: apidb's backups are kept long, this
/// database's only as long as an erasure may take to reach every copy (docs/privacy.md). No other service reads it.
/// </summary>
public sealed class SubjectKeysDbContext(DbContextOptions<SubjectKeysDbContext> options) : DbContext(options)
{
    public DbSet<SubjectKey> SubjectKeys => Set<SubjectKey>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<SubjectKey>(k =>
        {
            k.ToTable("SubjectKeys");
            k.HasKey(x => x.SubjectId);
            k.Property(x => x.SubjectId).HasMaxLength(100);
            k.Property(x => x.KekId).HasMaxLength(64);
        });
    }
}

internal sealed class SubjectKeysDbContextDesignTimeFactory : DesignTimeDbContextFactory<SubjectKeysDbContext>, IDesignTimeDbContextFactory<SubjectKeysDbContext>
{
    public SubjectKeysDbContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
