using System.Net;
using ClippyBot.Tests.Rig;

namespace ClippyBot.Tests.Identity;

/// <summary>
/// Scalar's "Authorize" on the Api's reference page, as the browser performs it: the development client's code flow with
/// PKCE, redirected back to the page, and the code redeemed cross-origin from the page's origin.
/// </summary>
[TestClass]
public sealed class ApiReferenceSignInTests
{
    private const string ScalarPage = "https://api.test/scalar/";
    private const string ScalarOrigin = "https://api.test";

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task The_reference_page_signs_in_with_the_development_client_and_only_its_origin_may_redeem_cross_origin()
    {
        var ct = TestContext.CancellationToken;
        await using var identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?>
        {
            ["Oidc:Clients:3:RedirectUris:1"] = ScalarPage,
        });
        using var browser = identity.Browser();
        var (_, code, pkce) = await OidcFlows.RegisterAndSignInAsync(browser, ct, IdentityHost.DevClient, ScalarPage);

        using var client = identity.CreateClient();
        using var redeem = new HttpRequestMessage(HttpMethod.Post, new Uri("/connect/token", UriKind.Relative))
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code",
                ["client_id"] = IdentityHost.DevClient,
                ["code"] = code,
                ["redirect_uri"] = ScalarPage,
                ["code_verifier"] = pkce.Verifier,
            }),
        };
        redeem.Headers.Add("Origin", ScalarOrigin);
        using var answer = await client.SendAsync(redeem, ct);
        Assert.AreEqual(HttpStatusCode.OK, answer.StatusCode, await answer.Content.ReadAsStringAsync(ct));
        StringAssert.Contains(await answer.Content.ReadAsStringAsync(ct), "access_token");
        Assert.AreEqual(ScalarOrigin, answer.Headers.GetValues("Access-Control-Allow-Origin").Single(), "the page may read the answer");

        // Another site's page gets no CORS grant: its script cannot read what the token endpoint says.
        using var foreign = new HttpRequestMessage(HttpMethod.Post, new Uri("/connect/token", UriKind.Relative))
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "authorization_code", ["client_id"] = IdentityHost.DevClient, ["code"] = "x" }),
        };
        foreign.Headers.Add("Origin", "https://evil.test");
        using var refused = await client.SendAsync(foreign, ct);
        Assert.IsFalse(refused.Headers.Contains("Access-Control-Allow-Origin"), "no grant for a foreign origin");
    }

    [TestMethod]
    public async Task Only_the_pages_of_the_authorization_flow_leave_a_sign_in_popup_connected_to_the_app_that_opened_it()
    {
        var ct = TestContext.CancellationToken;
        await using var identity = await IdentityHost.StartAsync(ct);
        using var client = identity.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        async Task<string> OpenerPolicyAsync(string path)
        {
            using var response = await client.GetAsync(new Uri(path, UriKind.Relative), ct);
            return response.Headers.GetValues("Cross-Origin-Opener-Policy").Single();
        }

        // A popup app (Scalar, a single-page app) reads the code when the popup comes back: the flow must not cut it off.
        Assert.AreEqual("unsafe-none", await OpenerPolicyAsync($"/connect/authorize?client_id={IdentityHost.DevClient}&response_type=code"));
        Assert.AreEqual("unsafe-none", await OpenerPolicyAsync("/account/login?ReturnUrl=%2Fconnect%2Fauthorize%3Fclient_id%3Dx"));
        // Everything else stays isolated from whoever opened it.
        foreach (var path in new[] { "/account/login", "/account/login?ReturnUrl=%2Faccount%2Fmanage", "/account/register", "/account/manage", "/account/login?ReturnUrl=https%3A%2F%2Fevil.test%2Fconnect%2Fauthorize" })
        {
            Assert.AreEqual("same-origin", await OpenerPolicyAsync(path), path);
        }
    }
}
