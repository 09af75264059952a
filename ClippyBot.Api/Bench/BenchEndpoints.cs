namespace ClippyBot.Api.Bench;

/// <summary>
/// The security-overhead benchmark (bench/run.sh) compares an authorized workspace read with the same query behind no
/// authentication at all. That comparison endpoint is compiled only into bench builds (bench/run.sh builds with
/// <c>-p:BenchBuild=true</c>), and even there exists only when <c>Bench:UnauthenticatedWorkspaceRead</c> is true, which
/// start-up refuses outside Development, Testing and Bench (<see cref="Microsoft.Extensions.Hosting.UnsafeSwitches"/>).
/// </summary>
public static class BenchEndpoints
{
    public static WebApplication MapBenchApi(this WebApplication app)
    {
#if BENCH
        if (app.Configuration.GetValue<bool>("Bench:UnauthenticatedWorkspaceRead"))
        {
            app.MapGet("/bench/workspaces/{workspaceId:guid}", async (Guid workspaceId, Data.ApiDbContext db) =>
            {
                var workspace = await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.SingleOrDefaultAsync(
                    Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.AsNoTracking(db.Workspaces), w => w.Id == workspaceId);
                return workspace is null ? Results.NotFound() : Results.Ok(new { workspace.Id, workspace.Name, workspace.RequireMfaForAdmins });
            }).AllowAnonymous().ExcludeFromDescription();
        }
#endif
        return app;
    }
}
