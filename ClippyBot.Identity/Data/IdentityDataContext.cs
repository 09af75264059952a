using ClippyBot.ServiceDefaults.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace ClippyBot.Identity.Data;

/// <summary>The Identity service's own database (`identitydb`); no other service reads it.</summary>
public sealed class IdentityDataContext(DbContextOptions<IdentityDataContext> options) : DbContext(options)
{
}

internal sealed class IdentityDataContextDesignTimeFactory : DesignTimeDbContextFactory<IdentityDataContext>, IDesignTimeDbContextFactory<IdentityDataContext>
{
    public IdentityDataContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
