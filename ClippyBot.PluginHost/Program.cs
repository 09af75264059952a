using ClippyBot.PluginHost;
using ClippyBot.PluginHost.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<PluginsDbContext>("pluginsdb");
if (builder.RunsMigrationsOnly())
{
    await builder.MigrateAsync();
    return;
}
builder.AddPluginHostServices();

var app = builder.Build();

app.UsePluginHostPipeline();
app.MapPluginHostEndpoints();

app.Run();
