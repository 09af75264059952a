using System.Net;
using System.Net.Http.Headers;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

/// <summary>Two replicas of the Api share one Redis: the limits hold for the service in total, not per replica.</summary>
[TestClass]
public sealed class RateLimitTests
{
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
            // This class's own counters: other test classes share Redis and the loopback address.
            ["RateLimits:KeyPrefix"] = "test-rl-" + Guid.NewGuid().ToString("N"),
            ["RateLimits:Anonymous:PermitLimit"] = "5",
            ["RateLimits:Authenticated:PermitLimit"] = "6",
            ["RateLimits:Sensitive:PermitLimit"] = "2",
            ["RateLimits:Anonymous:Window"] = "00:10:00",
            ["RateLimits:Authenticated:Window"] = "00:10:00",
            ["RateLimits:Sensitive:Window"] = "00:10:00",
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

    [TestMethod]
    public async Task Anonymous_requests_from_one_address_are_limited_across_both_replicas_with_retry_after()
    {
        var ct = TestContext.CancellationToken;
        // The refusals also show up as OpenTelemetry security metrics of these two replicas.
        var meterScopes = new object[]
        {
            s_replicaA.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(),
            s_replicaB.Services.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>(),
        };
        long measured = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Name == "clippybot.security.rate_limited" && meterScopes.Contains(instrument.Meter.Scope))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref measured, value));
        listener.Start();
        var statuses = new List<HttpStatusCode>();
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 8; i++)
        {
            var response = await (i % 2 == 0 ? s_replicaA : s_replicaB).CreateClient().GetAsync(new Uri("/api/me", UriKind.Relative), ct);
            statuses.Add(response.StatusCode);
            if (response.StatusCode == HttpStatusCode.TooManyRequests)
            {
                refused ??= response;
            }
        }

        Assert.AreEqual(5, statuses.Count(s => s != HttpStatusCode.TooManyRequests), string.Join(",", statuses));
        Assert.IsNotNull(refused);
        Assert.IsTrue(int.Parse(refused.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture) > 0);
        StringAssert.Contains(await refused.Content.ReadAsStringAsync(ct), "rate-limited");
        Assert.AreEqual("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.AreEqual(statuses.Count(s => s == HttpStatusCode.TooManyRequests), Interlocked.Read(ref measured));
    }

    [TestMethod]
    public async Task Each_user_has_their_own_budget_shared_by_both_replicas()
    {
        var ct = TestContext.CancellationToken;
        var alice = await OidcFlows.NewLoginAsync(s_identity, ct);
        var bob = await OidcFlows.NewLoginAsync(s_identity, ct);

        var aliceStatuses = new List<HttpStatusCode>();
        for (var i = 0; i < 8; i++)
        {
            aliceStatuses.Add(await MeAsync(i % 2 == 0 ? s_replicaA : s_replicaB, alice.Access, ct));
        }

        Assert.AreEqual(6, aliceStatuses.Count(s => s == HttpStatusCode.OK), string.Join(",", aliceStatuses));
        Assert.AreEqual(2, aliceStatuses.Count(s => s == HttpStatusCode.TooManyRequests));
        Assert.AreEqual(HttpStatusCode.OK, await MeAsync(s_replicaB, bob.Access, ct), "another user is not affected");
    }

    [TestMethod]
    public async Task Sensitive_endpoints_have_a_stricter_limit_of_their_own()
    {
        var ct = TestContext.CancellationToken;
        var carol = await OidcFlows.NewLoginAsync(s_identity, ct);
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            using var client = (i % 2 == 0 ? s_replicaA : s_replicaB).CreateClient();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", carol.Access);
            using var response = await client.SendJsonAsync(HttpMethod.Post, "/api/workspaces", new { name = $"w{i}" }, ct);
            statuses.Add(response.StatusCode);
        }

        CollectionAssert.AreEqual(new[] { HttpStatusCode.Created, HttpStatusCode.Created, HttpStatusCode.TooManyRequests }, statuses);
    }

    private static async Task<HttpStatusCode> MeAsync(ServiceFactory<ApiDbContext> replica, string token, CancellationToken ct)
    {
        using var client = replica.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await client.GetAsync(new Uri("/api/me", UriKind.Relative), ct);
        return response.StatusCode;
    }
}
