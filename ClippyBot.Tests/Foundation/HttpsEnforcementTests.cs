using System.Net;
using System.Security.Cryptography;
using ClippyBot.Api.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Mvc.Testing;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// Outside local development a request that did not arrive over TLS is refused (Api) or redirected (Identity's pages);
/// probes stay reachable. Here the switch <c>Edge:RequireHttps</c> turns production behaviour on in the test environment.
/// </summary>
[TestClass]
public sealed class HttpsEnforcementTests
{
    private static readonly Uri Http = new("http://localhost");
    private static readonly Uri Https = new("https://localhost");

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task The_Api_refuses_plain_http_with_a_problem_and_serves_https_and_probes()
    {
        var ct = TestContext.CancellationToken;
        await using var api = await ServiceFactory.WithFreshDatabaseAsync<ApiDbContext>("apidb", new Dictionary<string, string?>
        {
            ["ApiKeys:HashKey"] = RandomNumberGenerator.GetHexString(64),
            ["Audit:ChainKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
            ["Encryption:KeyEncryptionKey"] = RandomNumberGenerator.GetHexString(64),
            ["Edge:RequireHttps"] = "true",
        }, ct: ct);

        using var plain = api.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = Http, AllowAutoRedirect = false });
        using var refused = await plain.GetAsync(new Uri("/api/me", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.AreEqual("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        StringAssert.Contains(await refused.Content.ReadAsStringAsync(ct), "https://clippybot.dev/problems/https-required");
        Assert.AreEqual("nosniff", refused.Headers.GetValues("X-Content-Type-Options").Single(), "the refusal carries the security headers too");

        using var probe = await plain.GetAsync(new Uri("/alive", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, probe.StatusCode, "orchestrators probe pods over http");

        using var secure = api.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = Https, AllowAutoRedirect = false });
        using var reached = await secure.GetAsync(new Uri("/api/me", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Unauthorized, reached.StatusCode, "over https the request reaches authentication");
    }

    [TestMethod]
    public async Task Identity_redirects_a_plain_http_page_visit_to_https_and_refuses_a_plain_http_post()
    {
        var ct = TestContext.CancellationToken;
        await using var identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?>
        {
            ["Edge:RequireHttps"] = "true",
            ["Edge:HttpsPort"] = "7101",
        });

        using var plain = identity.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = Http, AllowAutoRedirect = false });
        using var visit = await plain.GetAsync(new Uri("/account/login?ReturnUrl=%2Fconnect%2Fauthorize", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.PermanentRedirect, visit.StatusCode);
        Assert.AreEqual("https://localhost:7101/account/login?ReturnUrl=%2Fconnect%2Fauthorize", visit.Headers.Location?.OriginalString);

        // A complete, valid client-credentials request: the token fast path must not answer it over http either.
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = IdentityHost.ServiceClient,
            ["client_secret"] = IdentityHost.ServiceSecret,
            ["scope"] = "pluginhost",
        });
        using var post = await plain.PostAsync(new Uri("/connect/token", UriKind.Relative), form, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, post.StatusCode, "a form sent over http is not bounced to https, it is refused");
        StringAssert.Contains(await post.Content.ReadAsStringAsync(ct), "https-required");

        using var secure = identity.CreateClient(new WebApplicationFactoryClientOptions { BaseAddress = Https, AllowAutoRedirect = false });
        using var page = await secure.GetAsync(new Uri("/account/login", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, page.StatusCode);
    }
}
