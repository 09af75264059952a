using ClippyBot.Api.Data;
using Microsoft.EntityFrameworkCore;

namespace ClippyBot.Api.Bench;

/// <summary>
/// The security-overhead benchmark (bench/run.sh) compares an authorized workspace read with the same query behind no
/// authentication at all. That comparison endpoint exists only when <c>Bench:UnauthenticatedWorkspaceRead</c> is true
/// — set by the bench runner, never by the AppHost or any deployment.
/// </summary>
public static class BenchEndpoints
{
    public static WebApplication MapBenchApi(this WebApplication app)
    {
        if (app.Configuration.GetValue<bool>("Bench:UnauthenticatedWorkspaceRead"))
        {
            app.MapGet("/bench/workspaces/{workspaceId:guid}", async (Guid workspaceId, ApiDbContext db) =>
            {
                var workspace = await db.Workspaces.AsNoTracking().SingleOrDefaultAsync(w => w.Id == workspaceId);
                return workspace is null ? Results.NotFound() : Results.Ok(new { workspace.Id, workspace.Name, workspace.RequireMfaForAdmins });
            }).AllowAnonymous().ExcludeFromDescription();
        }
        return app;
    }
}
