using ClippyBot.PluginHost.Data;
using ClippyBot.PluginHost.Plugins;
using ClippyBot.ServiceDefaults.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<PluginsDbContext>("pluginsdb");
if (builder.RunsMigrationsOnly())
{
    await builder.MigrateAsync();
    return;
}
builder.AddSealedDataProtection<PluginsDbContext>("pluginhost", "Encryption:KeyEncryptionKey");
builder.AddPlugins();
builder.AddPluginApi();

var app = builder.Build();

app.MapDefaultEndpoints();
app.MapPluginApi();

app.Run();
