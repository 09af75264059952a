using System.Net;
using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

[TestClass]
public sealed class OidcProviderTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_identity = await IdentityHost.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_identity.DisposeAsync();

    [TestMethod]
    public async Task Code_flow_with_pkce_through_the_login_form_issues_signed_15_minute_tokens_for_the_api()
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_identity.Browser();
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, ct);
        var pkce = Pkce.Create();

        var code = await SignInForCodeAsync(browser, email, GoodPassword, pkce, ct);
        var (status, tokens) = await RedeemCodeAsync(s_identity.CreateClient(), code, pkce, ct);

        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        var (header, payload) = DecodeJwt(accessToken);
        Assert.AreEqual("ES256", header.GetProperty("alg").GetString());
        Assert.AreEqual("at+jwt", header.GetProperty("typ").GetString());
        Assert.IsLessThanOrEqualTo(900, payload.GetProperty("exp").GetInt64() - payload.GetProperty("iat").GetInt64());
        Assert.IsLessThanOrEqualTo(900, tokens.GetProperty("expires_in").GetInt32());
        Assert.AreEqual("clippybot-api", Audience(payload));
        Assert.AreEqual("pwd", payload.GetProperty("amr")[0].GetString());
        Assert.IsFalse(payload.TryGetProperty("security_stamp", out _), "internal claims stay out of access tokens");
        await AssertValidAgainstJwksAsync(accessToken, "clippybot-api", ct);

        var (_, idPayload) = DecodeJwt(tokens.GetProperty("id_token").GetString()!);
        Assert.IsLessThanOrEqualTo(900, idPayload.GetProperty("exp").GetInt64() - idPayload.GetProperty("iat").GetInt64());
        Assert.AreEqual(email, idPayload.GetProperty("email").GetString());
        Assert.IsTrue(tokens.TryGetProperty("refresh_token", out _));

        using var userInfo = new HttpRequestMessage(HttpMethod.Get, "/connect/userinfo");
        userInfo.Headers.Authorization = new("Bearer", accessToken);
        using var userInfoResponse = await s_identity.CreateClient().SendAsync(userInfo, ct);
        Assert.AreEqual(HttpStatusCode.OK, userInfoResponse.StatusCode);
        using var claims = JsonDocument.Parse(await userInfoResponse.Content.ReadAsStringAsync(ct));
        Assert.AreEqual(email, claims.RootElement.GetProperty("email").GetString());
    }

    [TestMethod]
    public async Task Client_credentials_issue_an_access_token_for_the_plugin_host()
    {
        var (status, tokens) = await ClientCredentialsAsync(s_identity.CreateClient(), IdentityHost.ServiceClient, IdentityHost.ServiceSecret, TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        var accessToken = tokens.GetProperty("access_token").GetString()!;
        var (_, payload) = DecodeJwt(accessToken);
        Assert.AreEqual(IdentityHost.ServiceClient, payload.GetProperty("sub").GetString());
        Assert.AreEqual("clippybot-pluginhost", Audience(payload));
        await AssertValidAgainstJwksAsync(accessToken, "clippybot-pluginhost", TestContext.CancellationToken);
    }

    [TestMethod]
    public async Task Wrong_secret_and_unknown_client_get_the_same_invalid_client_answer()
    {
        var ct = TestContext.CancellationToken;
        var (wrongStatus, wrong) = await ClientCredentialsAsync(s_identity.CreateClient(), IdentityHost.ServiceClient, "not-the-secret", ct);
        var (unknownStatus, unknown) = await ClientCredentialsAsync(s_identity.CreateClient(), "no-such-client", "not-the-secret", ct);

        Assert.AreEqual(HttpStatusCode.Unauthorized, wrongStatus);
        Assert.AreEqual(unknownStatus, wrongStatus);
        Assert.AreEqual("invalid_client", wrong.GetProperty("error").GetString());
        Assert.AreEqual(unknown.GetProperty("error").GetString(), wrong.GetProperty("error").GetString());
        Assert.AreEqual(unknown.GetProperty("error_description").GetString(), wrong.GetProperty("error_description").GetString());
    }

    private static string Audience(JsonElement payload) =>
        payload.GetProperty("aud").ValueKind == JsonValueKind.Array ? payload.GetProperty("aud")[0].GetString()! : payload.GetProperty("aud").GetString()!;

    /// <summary>Validates like a resource server: keys from JWKS, issuer, audience, lifetime, signature.</summary>
    private static async Task AssertValidAgainstJwksAsync(string token, string audience, CancellationToken ct)
    {
        var client = s_identity.CreateClient();
        using var discovery = JsonDocument.Parse(await client.GetStringAsync(new Uri("/.well-known/openid-configuration", UriKind.Relative), ct));
        var jwks = new JsonWebKeySet(await client.GetStringAsync(new Uri(discovery.RootElement.GetProperty("jwks_uri").GetString()!), ct));
        var result = await new JsonWebTokenHandler().ValidateTokenAsync(token, new TokenValidationParameters
        {
            ValidIssuer = discovery.RootElement.GetProperty("issuer").GetString(),
            ValidAudience = audience,
            IssuerSigningKeys = jwks.GetSigningKeys(),
            ValidTypes = ["at+jwt"],
        });
        Assert.IsTrue(result.IsValid, result.Exception?.ToString());
    }
}
