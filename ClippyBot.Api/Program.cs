using ClippyBot.Api;
using ClippyBot.Api.Data;
using ClippyBot.Api.Privacy;

var builder = WebApplication.CreateBuilder(args);

builder.AddServiceDefaults();
builder.AddServiceDatabase<ApiDbContext>("apidb");
builder.AddServiceDatabase<SubjectKeysDbContext>("subjectkeysdb");
if (builder.RunsMigrationsOnly())
{
    await builder.MigrateAsync();
    return;
}
builder.AddApiServices();

var app = builder.Build();

app.UseApiPipeline();
app.MapApiEndpoints();

app.Run();
