using System.Net;

namespace ClippyBot.Tests.Api;

/// <summary>Per-IP limits count the client's address as a trusted proxy reports it — and only a trusted proxy.</summary>
[TestClass]
public sealed class ForwardedHeadersTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Behind_a_trusted_proxy_each_forwarded_client_address_has_its_own_budget()
    {
        var ct = TestContext.CancellationToken;
        await using var testbed = await ApiTestbed.StartAsync(ct, apiSettings: new Dictionary<string, string?>
        {
            ["Edge:TrustedProxies:0"] = "127.0.0.1",
            ["RateLimits:KeyPrefix"] = "test-xff-" + Guid.NewGuid().ToString("N"),
            ["RateLimits:Anonymous:PermitLimit"] = "2",
            ["RateLimits:Anonymous:Window"] = "00:10:00",
        });

        var first = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            first.Add(await AnonymousFromAsync(testbed, "203.0.113.7", ct));
        }
        var other = await AnonymousFromAsync(testbed, "203.0.113.8", ct);

        CollectionAssert.AreEqual(new[] { HttpStatusCode.Unauthorized, HttpStatusCode.Unauthorized, HttpStatusCode.TooManyRequests }, first);
        Assert.AreEqual(HttpStatusCode.Unauthorized, other, "another client behind the same proxy is not throttled");
    }

    [TestMethod]
    public async Task Without_trusted_proxies_a_forged_forwarded_header_changes_nothing()
    {
        var ct = TestContext.CancellationToken;
        await using var testbed = await ApiTestbed.StartAsync(ct, apiSettings: new Dictionary<string, string?>
        {
            ["RateLimits:KeyPrefix"] = "test-xff-" + Guid.NewGuid().ToString("N"),
            ["RateLimits:Anonymous:PermitLimit"] = "2",
            ["RateLimits:Anonymous:Window"] = "00:10:00",
        });

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
        {
            // A client rotating forged addresses still counts as itself.
            statuses.Add(await AnonymousFromAsync(testbed, $"198.51.100.{i + 1}", ct));
        }

        Assert.AreEqual(HttpStatusCode.TooManyRequests, statuses[2]);
    }

    private static async Task<HttpStatusCode> AnonymousFromAsync(ApiTestbed testbed, string forwardedFor, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        request.Headers.Add("X-Forwarded-For", forwardedFor);
        using var response = await testbed.Api.CreateClient().SendAsync(request, ct);
        return response.StatusCode;
    }
}
