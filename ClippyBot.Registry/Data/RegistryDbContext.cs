using ClippyBot.Registry.Metadata;
using ClippyBot.Registry.Versions;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Registry.Data;

/// <summary>The registry's own database (`registrydb`); no other service reads it — the PluginHost reads its signed metadata over HTTP.</summary>
public sealed class RegistryDbContext(DbContextOptions<RegistryDbContext> options) : DbContext(options), Microsoft.AspNetCore.DataProtection.EntityFrameworkCore.IDataProtectionKeyContext
{
    public DbSet<Microsoft.AspNetCore.DataProtection.EntityFrameworkCore.DataProtectionKey> DataProtectionKeys => Set<Microsoft.AspNetCore.DataProtection.EntityFrameworkCore.DataProtectionKey>();

    public DbSet<Publisher> Publishers => Set<Publisher>();

    public DbSet<PublisherKey> PublisherKeys => Set<PublisherKey>();

    public DbSet<PluginNamespace> Namespaces => Set<PluginNamespace>();

    public DbSet<PluginVersion> Versions => Set<PluginVersion>();

    public DbSet<MetadataFile> MetadataFiles => Set<MetadataFile>();

    public DbSet<Publishers.KeyChallenge> KeyChallenges => Set<Publishers.KeyChallenge>();

    public DbSet<Publishers.RegistryAuditEntry> Audit => Set<Publishers.RegistryAuditEntry>();

    public DbSet<Reviews.ReviewDecision> ReviewDecisions => Set<Reviews.ReviewDecision>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Publisher>(p =>
        {
            p.HasKey(x => x.Id);
            p.Property(x => x.Name).HasMaxLength(100);
            p.Property(x => x.SubjectId).HasMaxLength(100);
            p.HasIndex(x => x.Name).IsUnique();
        });
        modelBuilder.Entity<PublisherKey>(k =>
        {
            k.HasKey(x => x.KeyId);
            k.Property(x => x.KeyId).HasMaxLength(16);
            k.HasIndex(x => x.PublisherId);
        });
        modelBuilder.Entity<PluginNamespace>(n =>
        {
            n.HasKey(x => x.Prefix);
            n.Property(x => x.Prefix).HasMaxLength(100);
        });
        modelBuilder.Entity<PluginVersion>(v =>
        {
            v.HasKey(x => x.Id);
            v.Property(x => x.PluginId).HasMaxLength(100);
            v.Property(x => x.Version).HasMaxLength(64);
            v.Property(x => x.SignerKeyId).HasMaxLength(16);
            v.Property(x => x.Sha256).HasMaxLength(64);
            v.Property(x => x.Status).HasConversion<string>().HasMaxLength(16);
            v.Property(x => x.DecisionNote).HasMaxLength(2000);
            v.Property(x => x.YankReason).HasMaxLength(500);
            v.HasIndex(x => new { x.PluginId, x.Version }).IsUnique();
            v.HasIndex(x => x.Status);
        });
        modelBuilder.Entity<Publishers.KeyChallenge>(c =>
        {
            c.HasKey(x => x.Id);
            c.Property(x => x.ChallengeHash).HasMaxLength(64);
            c.HasIndex(x => x.ChallengeHash).IsUnique();
        });
        modelBuilder.Entity<Publishers.RegistryAuditEntry>(a =>
        {
            a.HasKey(x => x.Id);
            a.Property(x => x.Actor).HasMaxLength(100);
            a.Property(x => x.Action).HasMaxLength(64);
            a.Property(x => x.Outcome).HasMaxLength(16);
            a.Property(x => x.Detail).HasMaxLength(500);
            a.HasIndex(x => x.At);
            a.Property(x => x.PreviousHash).HasDefaultValue(Array.Empty<byte>());
            a.Property(x => x.Hash).HasDefaultValue(Array.Empty<byte>());
        });
        modelBuilder.Entity<Publisher>(p => p.HasIndex(x => x.SubjectId).IsUnique());
        modelBuilder.Entity<Reviews.ReviewDecision>(d =>
        {
            d.HasKey(x => x.Id);
            d.Property(x => x.Reviewer).HasMaxLength(100);
            d.Property(x => x.Note).HasMaxLength(2000);
            // One decision per reviewer and version: four eyes means two different people.
            d.HasIndex(x => new { x.VersionId, x.Reviewer }).IsUnique();
        });
        modelBuilder.Entity<MetadataFile>(m =>
        {
            m.HasKey(x => new { x.Role, x.Version });
            m.Property(x => x.Role).HasMaxLength(16);
        });
    }
}

internal sealed class RegistryDbContextDesignTimeFactory : ClippyBot.ServiceDefaults.Data.DesignTimeDbContextFactory<RegistryDbContext>,
    Microsoft.EntityFrameworkCore.Design.IDesignTimeDbContextFactory<RegistryDbContext>
{
    public RegistryDbContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
