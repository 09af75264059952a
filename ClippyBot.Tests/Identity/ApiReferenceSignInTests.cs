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
}
