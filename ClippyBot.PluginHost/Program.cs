using ClippyBot.PluginHost.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<PluginsDbContext>("pluginsdb");
builder.AddServiceCache();

var app = builder.Build();

app.MapDefaultEndpoints();

app.Run();
