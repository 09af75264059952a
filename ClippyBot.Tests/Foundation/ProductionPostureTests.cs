using ClippyBot.PluginHost.Data;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// The services as a deployment runs them (<c>ASPNETCORE_ENVIRONMENT=Production</c>), not as the test rig's
/// <c>Testing</c>: switches meant for local work, tests and the benchmark cannot reach production.
/// </summary>
[TestClass]
public sealed class ProductionPostureTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class Environment(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;

        public string ApplicationName { get; set; } = "test";

        public string ContentRootPath { get; set; } = "/";

        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = null!;
    }

    [TestMethod]
    [DataRow("Oidc:AllowHttp", "true")]
    [DataRow("Identity:AllowHttp", "True")]
    [DataRow("Edge:RequireHttps", "false")]
    [DataRow("Bench:UnauthenticatedWorkspaceRead", "true")]
    public void An_unsafe_switch_is_refused_outside_development_testing_and_bench(string key, string value)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [key] = value }).Build();
        foreach (var refused in new[] { "Production", "Staging", "Prod" })
        {
            var error = Assert.Throws<InvalidOperationException>(() => UnsafeSwitches.Guard(configuration, new Environment(refused)), refused);
            StringAssert.Contains(error.Message, key, "the message names the switch");
        }
        foreach (var allowed in new[] { "Development", "Testing", "Bench" })
        {
            UnsafeSwitches.Guard(configuration, new Environment(allowed));
        }
        // The safe value of each switch is fine anywhere.
        var safe = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [key] = value.Equals("false", StringComparison.OrdinalIgnoreCase) ? "true" : "false" }).Build();
        UnsafeSwitches.Guard(safe, new Environment("Production"));
    }

    [TestMethod]
    [DataRow("Oidc:AllowHttp", "true")]
    [DataRow("Identity:AllowHttp", "true")]
    [DataRow("Edge:RequireHttps", "false")]
    [DataRow("Bench:UnauthenticatedWorkspaceRead", "true")]
    public async Task A_service_started_in_production_with_an_unsafe_switch_refuses_to_start_and_names_it(string key, string value)
    {
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var factory = await ServiceFactory.WithFreshDatabaseAsync<PluginsDbContext>("Production", "pluginsdb", new Dictionary<string, string?>
        {
            ["Encryption:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
            [key] = value,
        }, s => s.AddLogging(b => b.AddProvider(new CapturingLoggerProvider(failures))), TestContext.CancellationToken);
        var error = Assert.Throws<Exception>(() => factory.CreateClient());
        var reasons = failures.Append(error.ToString()).ToList();
        Assert.IsTrue(reasons.Any(r => r.Contains(key + "=" + value, StringComparison.Ordinal) && r.Contains("Production", StringComparison.Ordinal)), string.Join("\n", reasons));
    }
}
