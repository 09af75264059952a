using ClippyBot.Identity;
using ClippyBot.Identity.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<IdentityDataContext>("identitydb");
if (builder.RunsMigrationsOnly())
{
    await builder.MigrateAsync();
    return;
}
builder.AddIdentityServices();

var app = builder.Build();

app.UseIdentityPipeline();
app.MapIdentityEndpoints();

app.Run();
