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
}

internal sealed class PluginsDbContextDesignTimeFactory : DesignTimeDbContextFactory<PluginsDbContext>, IDesignTimeDbContextFactory<PluginsDbContext>
{
    public PluginsDbContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
