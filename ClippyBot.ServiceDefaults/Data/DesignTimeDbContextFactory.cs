using Microsoft.EntityFrameworkCore;

namespace ClippyBot.ServiceDefaults.Data;

/// <summary>
/// Lets <c>dotnet ef migrations add</c> build a service's model without starting the service. The connection string
/// is never opened when adding migrations; for <c>database update</c> pass <c>--connection</c>.
/// </summary>
public abstract class DesignTimeDbContextFactory<TContext> where TContext : DbContext
{
    protected static DbContextOptions<TContext> DesignTimeOptions() =>
        new DbContextOptionsBuilder<TContext>()
            .UseNpgsql("Host=localhost;Database=design_time")
            .Options;
}
