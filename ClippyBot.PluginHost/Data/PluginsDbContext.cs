using ClippyBot.ServiceDefaults.Data;
using Microsoft.AspNetCore.DataProtection.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace ClippyBot.PluginHost.Data;

/// <summary>The PluginHost service's own database (`pluginsdb`); no other service reads it.</summary>
public sealed class PluginsDbContext(DbContextOptions<PluginsDbContext> options) : DbContext(options), IDataProtectionKeyContext
{
    /// <summary>Data Protection's key ring, each key sealed (see ServiceDefaults' SealedDataProtection).</summary>
    public DbSet<DataProtectionKey> DataProtectionKeys => Set<DataProtectionKey>();

    public DbSet<Plugins.InstalledPlugin> InstalledPlugins => Set<Plugins.InstalledPlugin>();

    public DbSet<Plugins.CrashLogEntry> CrashLog => Set<Plugins.CrashLogEntry>();

    public DbSet<Plugins.QuarantineEntry> Quarantines => Set<Plugins.QuarantineEntry>();

    public DbSet<Plugins.PluginKvEntry> PluginKv => Set<Plugins.PluginKvEntry>();

    /// <summary>The community registry's TUF metadata this PluginHost trusts (its memory against rollback).</summary>
    public DbSet<Registry.TrustedMetadata> TrustedMetadata => Set<Registry.TrustedMetadata>();

    protected override void OnModelCreating(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Plugins.InstalledPlugin>(p =>
        {
            p.HasKey(x => x.Id);
            p.Property(x => x.PluginId).HasMaxLength(100);
            p.Property(x => x.Version).HasMaxLength(64);
            p.Property(x => x.WasmSha256).HasMaxLength(64);
            p.Property(x => x.SignerKeyId).HasMaxLength(16);
            p.HasIndex(x => new { x.PluginId, x.Version }).IsUnique();
            // At most one current version per plugin, enforced by the database.
            p.HasIndex(x => x.PluginId).IsUnique().HasFilter("\"Current\"");
        });
        modelBuilder.Entity<Plugins.CrashLogEntry>(c =>
        {
            c.HasKey(x => x.Id);
            c.Property(x => x.PluginId).HasMaxLength(100);
            c.Property(x => x.Version).HasMaxLength(64);
            c.Property(x => x.Outcome).HasMaxLength(16);
            c.Property(x => x.Kind).HasMaxLength(200);
            c.Property(x => x.InputSha256).HasMaxLength(64);
            c.HasIndex(x => new { x.PluginId, x.Version, x.At });
        });
        modelBuilder.Entity<Plugins.PluginKvEntry>(k =>
        {
            k.HasKey(x => new { x.WorkspaceId, x.PluginId, x.Key });
            k.Property(x => x.PluginId).HasMaxLength(100);
            k.Property(x => x.Key).HasMaxLength(ClippyBot.Plugins.Sandbox.KvSnapshot.MaxKeyBytes);
        });
        modelBuilder.Entity<Registry.TrustedMetadata>(m =>
        {
            m.HasKey(x => x.Role);
            m.Property(x => x.Role).HasMaxLength(16);
            m.Property(x => x.Signers).HasMaxLength(2100);
        });
        modelBuilder.Entity<Plugins.QuarantineEntry>(q =>
        {
            q.HasKey(x => x.Id);
            q.Property(x => x.PluginId).HasMaxLength(100);
            q.Property(x => x.Version).HasMaxLength(64);
            q.Property(x => x.Reason).HasMaxLength(500);
            q.Property(x => x.SetBy).HasMaxLength(100);
            q.Property(x => x.ReleasedBy).HasMaxLength(100);
            q.HasIndex(x => new { x.PluginId, x.ReleasedAt });
        });
    }
}

internal sealed class PluginsDbContextDesignTimeFactory : DesignTimeDbContextFactory<PluginsDbContext>, IDesignTimeDbContextFactory<PluginsDbContext>
{
    public PluginsDbContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
