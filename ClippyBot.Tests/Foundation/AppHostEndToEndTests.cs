using System.Net;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using ClippyBot.Tests.Rig;

namespace ClippyBot.Tests.Foundation;

/// <summary>Starts the real AppHost in local mode (no containers), exactly as the README's first command does.</summary>
[TestClass]
[DoNotParallelize]
public sealed class AppHostEndToEndTests
{
    private static readonly string[] Services = ["identity", "api", "pluginhost"];
    private static readonly string[] Infrastructure = ["postgres", "cache", "identitydb", "apidb", "pluginsdb"];

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task Local_mode_brings_every_resource_up_healthy_and_health_follows_postgres_stop_and_start()
    {
        var ct = TestContext.CancellationToken;
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.ClippyBot_AppHost>(
            ["--Infrastructure=local", "--LocalInfrastructure:Persistent=false"],
            (options, _) => options.DisableDashboard = true,
            ct);
        await using var app = await builder.BuildAsync(ct);
        await app.StartAsync(ct);

        foreach (var resource in Infrastructure.Concat(Services))
        {
            await app.ResourceNotifications.WaitForResourceHealthyAsync(resource, ct).WaitAsync(TimeSpan.FromMinutes(2), ct);
        }

        // Plain clients: the resilience handler of Aspire's test clients would retry the 503s we want to see.
        var clients = Services.ToDictionary(s => s, s => new HttpClient { BaseAddress = app.GetEndpoint(s, "http"), Timeout = TimeSpan.FromSeconds(10) });
        try
        {
            foreach (var (name, client) in clients)
            {
                Assert.AreEqual(HttpStatusCode.OK, await HealthStatusAsync(client, ct), $"{name} /health after start");
            }

            await app.ResourceCommands.ExecuteCommandAsync("postgres", KnownResourceCommands.StopCommand, ct);
            foreach (var (name, client) in clients)
            {
                await Poll.UntilAsync(async () => await HealthStatusAsync(client, ct) == HttpStatusCode.ServiceUnavailable,
                    TimeSpan.FromSeconds(30), $"{name} /health 503 with postgres stopped", ct);
            }

            await app.ResourceCommands.ExecuteCommandAsync("postgres", KnownResourceCommands.StartCommand, ct);
            foreach (var (name, client) in clients)
            {
                await Poll.UntilAsync(async () => await HealthStatusAsync(client, ct) == HttpStatusCode.OK,
                    TimeSpan.FromSeconds(60), $"{name} /health 200 after postgres restarted", ct);
            }
        }
        finally
        {
            foreach (var client in clients.Values)
            {
                client.Dispose();
            }
        }
    }

    private static async Task<HttpStatusCode> HealthStatusAsync(HttpClient client, CancellationToken ct)
    {
        using var response = await client.GetAsync(new Uri("/health", UriKind.Relative), ct);
        return response.StatusCode;
    }
}
