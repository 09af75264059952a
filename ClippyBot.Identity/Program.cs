using ClippyBot.Identity.Data;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<IdentityDataContext>("identitydb");
builder.AddServiceCache();

var app = builder.Build();

app.MapDefaultEndpoints();

app.Run();
