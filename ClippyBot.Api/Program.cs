using ClippyBot.Api.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<ApiDbContext>("apidb");
builder.AddServiceCache();

var app = builder.Build();

app.MapDefaultEndpoints();

app.Run();
