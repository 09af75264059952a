using System.Globalization;
using System.Net;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Api;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Mvc.Testing;

namespace ClippyBot.Tests.Foundation;

/// <summary>Security headers on every response — successes and errors — and RFC 9116 security.txt on the public services.</summary>
[TestClass]
public sealed class EdgeTests
{
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) =>
        s_testbed = await ApiTestbed.StartAsync(context.CancellationToken, apiSettings: new Dictionary<string, string?> { ["Api:AllowedOrigins:0"] = WebOrigin });

    private const string WebOrigin = "https://app.test";

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    [DataRow("api", "/health", HttpStatusCode.OK)]
    [DataRow("api", "/api/me", HttpStatusCode.Unauthorized)]
    [DataRow("api", "/nothing-here", HttpStatusCode.Unauthorized)]
    [DataRow("identity", "/account/login", HttpStatusCode.OK)]
    [DataRow("identity", "/nothing-here", HttpStatusCode.NotFound)]
    public async Task Every_response_carries_the_security_headers(string service, string path, HttpStatusCode expected)
    {
        using var response = await Client(service).GetAsync(new Uri(path, UriKind.Relative), TestContext.CancellationToken);

        Assert.AreEqual(expected, response.StatusCode);
        Assert.AreEqual("nosniff", response.Headers.GetValues("X-Content-Type-Options").Single());
        Assert.AreEqual("no-referrer", response.Headers.GetValues("Referrer-Policy").Single());
        Assert.AreEqual("DENY", response.Headers.GetValues("X-Frame-Options").Single());
        var csp = response.Headers.GetValues("Content-Security-Policy").Single();
        StringAssert.Contains(csp, "frame-ancestors 'none'");
        if (service == "identity")
        {
            StringAssert.Contains(csp, "script-src 'none'", "pages run no script at all");
        }
        else
        {
            StringAssert.StartsWith(csp, "default-src 'none'");
        }
    }

    [TestMethod]
    [DataRow("api")]
    [DataRow("identity")]
    public async Task Security_txt_follows_RFC_9116_with_an_expiry_under_a_year_ahead(string service)
    {
        var text = await Client(service).GetStringAsync(new Uri("/.well-known/security.txt", UriKind.Relative), TestContext.CancellationToken);
        var fields = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(": ", 2)).ToDictionary(p => p[0], p => p[1]);

        StringAssert.StartsWith(fields["Contact"], "mailto:");
        Assert.IsTrue(fields.ContainsKey("Policy"));
        Assert.AreEqual("en", fields["Preferred-Languages"]);
        var expires = DateTimeOffset.Parse(fields["Expires"], CultureInfo.InvariantCulture);
        Assert.IsTrue(expires > DateTimeOffset.UtcNow && expires < DateTimeOffset.UtcNow.AddYears(1), fields["Expires"]);
    }

    [TestMethod]
    public async Task A_request_body_over_the_limit_is_refused()
    {
        using var client = s_testbed.Api.CreateClient();
        using var content = new StringContent(new string('x', 2 * 1024 * 1024), System.Text.Encoding.UTF8, "application/json");
        using var response = await client.PostAsync(new Uri("/api/workspaces", UriKind.Relative), content, TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
    }

    [TestMethod]
    [DataRow(WebOrigin, true)]
    [DataRow("https://evil.test", false)]
    public async Task Only_the_web_apps_origin_may_call_the_Api_from_a_browser(string origin, bool allowed)
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, "/api/workspaces");
        preflight.Headers.Add("Origin", origin);
        preflight.Headers.Add("Access-Control-Request-Method", "POST");
        preflight.Headers.Add("Access-Control-Request-Headers", "authorization,content-type");
        using var response = await s_testbed.Api.CreateClient().SendAsync(preflight, TestContext.CancellationToken);

        Assert.AreEqual(allowed, response.Headers.Contains("Access-Control-Allow-Origin"));
        Assert.IsFalse(response.Headers.Contains("Access-Control-Allow-Credentials"), "bearer tokens only, never cookies");
    }

    private static HttpClient Client(string service) => service == "api" ? s_testbed.Api.CreateClient() : s_testbed.Identity.CreateClient();
}
