using ClippyBot.ServiceDefaults.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace ClippyBot.PluginHost.Data;

/// <summary>The PluginHost service's own database (`pluginsdb`); no other service reads it.</summary>
public sealed class PluginsDbContext(DbContextOptions<PluginsDbContext> options) : DbContext(options)
{
}

internal sealed class PluginsDbContextDesignTimeFactory : DesignTimeDbContextFactory<PluginsDbContext>, IDesignTimeDbContextFactory<PluginsDbContext>
{
    public PluginsDbContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
