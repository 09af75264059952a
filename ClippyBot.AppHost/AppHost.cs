using ClippyBot.AppHost.Infrastructure;

var builder = DistributedApplication.CreateBuilder(args);

var infrastructure = builder.AddClippyBotInfrastructure();

var identity = builder.AddProject<Projects.ClippyBot_Identity>("identity")
    .WithOwnDatabase(infrastructure.IdentityDatabase)
    .WithCache(infrastructure.Cache);

// Internal only: no external endpoint; the Api is its one caller.
var pluginHost = builder.AddProject<Projects.ClippyBot_PluginHost>("pluginhost")
    .WithOwnDatabase(infrastructure.PluginsDatabase)
    .WithCache(infrastructure.Cache);

builder.AddProject<Projects.ClippyBot_Api>("api")
    .WithOwnDatabase(infrastructure.ApiDatabase)
    .WithCache(infrastructure.Cache)
    .WithReference(identity).WaitFor(identity)
    .WithReference(pluginHost).WaitFor(pluginHost);

builder.Build().Run();
