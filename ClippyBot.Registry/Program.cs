using ClippyBot.Registry;
using ClippyBot.Registry.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<RegistryDbContext>("registrydb");
if (builder.RunsMigrationsOnly())
{
    await builder.MigrateAsync();
    return;
}
builder.AddRegistryServices();

var app = builder.Build();

app.UseRegistryPipeline();
app.MapRegistryEndpoints();

app.Run();
