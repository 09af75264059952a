using ClippyBot.ServiceDefaults.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Design;

namespace ClippyBot.Api.Data;

/// <summary>The Api service's own database (`apidb`); no other service reads it.</summary>
public sealed class ApiDbContext(DbContextOptions<ApiDbContext> options) : DbContext(options)
{
}

internal sealed class ApiDbContextDesignTimeFactory : DesignTimeDbContextFactory<ApiDbContext>, IDesignTimeDbContextFactory<ApiDbContext>
{
    public ApiDbContext CreateDbContext(string[] args) => new(DesignTimeOptions());
}
