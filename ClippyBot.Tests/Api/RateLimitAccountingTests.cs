using System.Net;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

/// <summary>
/// With production-sized limits (600 per minute, where the limiter's fast path runs), each request is charged exactly
/// once against each policy that applies — across two replicas, sensitive requests included.
/// </summary>
[TestClass]
public sealed class RateLimitAccountingTests
{
    private static readonly string Prefix = "test-rla-" + Guid.NewGuid().ToString("N");
    private static ServiceFactory<IdentityDataContext> s_identity = null!;
    private static ServiceFactory<ApiDbContext> s_replicaA = null!;
    private static ServiceFactory<ApiDbContext> s_replicaB = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        var ct = context.CancellationToken;
        s_identity = await IdentityHost.StartAsync(ct);
        s_replicaA = await ApiHost.StartAsync(s_identity, TestRig.Redis.ConnectionString, ct, settings: new Dictionary<string, string?>
        {
            ["RateLimits:KeyPrefix"] = Prefix,
            ["RateLimits:Authenticated:PermitLimit"] = "600",
            ["RateLimits:Sensitive:PermitLimit"] = "20",
            // Long windows: the test's requests all fall into one.
            ["RateLimits:Authenticated:Window"] = "01:00:00",
            ["RateLimits:Sensitive:Window"] = "01:00:00",
        });
        s_replicaB = await ApiHost.StartReplicaAsync(s_identity, s_replicaA, ct);
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        await s_replicaB.DisposeAsync();
        await s_replicaA.DisposeAsync();
        await s_identity.DisposeAsync();
    }

    private static async Task<long> ChargedAsync(string policy, string subject)
    {
        var redis = s_replicaA.Services.GetRequiredService<StackExchange.Redis.IConnectionMultiplexer>();
        long total = 0;
        foreach (var server in redis.GetServers())
        {
            await foreach (var key in server.KeysAsync(pattern: $"{Prefix}:{policy}:user:{subject}:*"))
            {
                total += (long)await redis.GetDatabase().StringGetAsync(key);
            }
        }
        return total;
    }

    [TestMethod]
    public async Task Each_request_is_charged_once_against_each_policy_on_the_fast_path_across_replicas()
    {
        var ct = TestContext.CancellationToken;
        var person = await ApiHost.NewUserAsync(s_identity, s_replicaA, ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(person.Client, "Charged", ct);
        using var other = s_replicaB.CreateClient();
        other.DefaultRequestHeaders.Authorization = person.Client.DefaultRequestHeaders.Authorization;
        var clients = new[] { person.Client, other };
        // The person's only request so far: creating the workspace (a sensitive one).
        await Poll.UntilAsync(async () => await ChargedAsync("global", person.Subject) > 0, TimeSpan.FromSeconds(5), "counted", ct);
        Assert.AreEqual(1, await ChargedAsync("global", person.Subject));
        const long before = 1;

        const int normal = 30;
        const int sensitive = 10;
        for (var i = 0; i < normal; i++)
        {
            using var me = await clients[i % 2].GetAsync(new Uri("/api/me", UriKind.Relative), ct);
            Assert.AreEqual(HttpStatusCode.OK, me.StatusCode);
        }
        for (var i = 0; i < sensitive; i++)
        {
            using var key = await clients[i % 2].SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/api-keys", new { name = $"k{i}", scopes = new[] { "dataRead" } }, ct);
            Assert.AreEqual(HttpStatusCode.Created, key.StatusCode, await key.Content.ReadAsStringAsync(ct));
        }

        // Background counting settles within moments; then the totals are exact.
        await Poll.UntilAsync(async () => await ChargedAsync("global", person.Subject) - before >= normal + sensitive, TimeSpan.FromSeconds(10), "all counted", ct);
        Assert.AreEqual(normal + sensitive, await ChargedAsync("global", person.Subject) - before, "each request once against the caller's overall budget");
        // Creating the workspace is sensitive too.
        Assert.AreEqual(1 + sensitive, await ChargedAsync("sensitive", person.Subject), "and each sensitive one once against the sensitive budget");
    }
}
