using ClippyBot.Contracts;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;
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
        var (email, code, pkce) = await RegisterAndSignInAsync(browser, ct);
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
    public async Task Client_credentials_fast_path_issues_the_same_token_and_response_OpenIddict_issues()
    {
        var ct = TestContext.CancellationToken;
        var handled = 0;
        await using var identity = await IdentityHost.StartAsync(ct, configureServices: services => services.AddOpenIddict().AddServer(server =>
            server.AddEventHandler<OpenIddict.Server.OpenIddictServerEvents.HandleTokenRequestContext>(h =>
                h.UseInlineHandler(_ => { Interlocked.Increment(ref handled); return default; }))));
        var client = identity.CreateClient();
        const string scope = "pluginhost identity.containment";

        // client_secret_post with scopes the client may use: answered before OpenIddict's pipeline.
        using var fastResponse = await PostTokenAsync(client, new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = IdentityHost.ServiceClient,
            ["client_secret"] = IdentityHost.ServiceSecret,
            ["scope"] = scope,
        }, basic: false, ct);
        // client_secret_basic (most client libraries' default) takes the same path.
        using var basicResponse = await PostTokenAsync(client, new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }, basic: true, ct);
        Assert.AreEqual(0, Volatile.Read(ref handled), "the ordinary requests never reached OpenIddict's token handlers");

        // The same request spelt with a trailing slash is OpenIddict's to answer: the reference.
        using var fullResponse = await PostTokenAsync(client, new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = scope }, basic: true, ct,
            path: "/connect/token/");
        Assert.AreEqual(1, Volatile.Read(ref handled), "the reference request went through OpenIddict");
        Assert.AreEqual(HttpStatusCode.OK, basicResponse.StatusCode);
        var (_, basicToken) = DecodeJwt((await basicResponse.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("access_token").GetString()!);

        Assert.AreEqual(HttpStatusCode.OK, fastResponse.StatusCode);
        Assert.AreEqual(fullResponse.StatusCode, fastResponse.StatusCode);
        foreach (var header in new[] { "Cache-Control", "Pragma" })
        {
            Assert.AreEqual(string.Join(",", fullResponse.Headers.GetValues(header)), string.Join(",", fastResponse.Headers.GetValues(header)), header);
        }
        Assert.AreEqual(fullResponse.Content.Headers.ContentType?.ToString(), fastResponse.Content.Headers.ContentType?.ToString());
        using var fastBody = JsonDocument.Parse(await fastResponse.Content.ReadAsStringAsync(ct));
        using var fullBody = JsonDocument.Parse(await fullResponse.Content.ReadAsStringAsync(ct));
        CollectionAssert.AreEqual(Names(fullBody.RootElement), Names(fastBody.RootElement));
        Assert.AreEqual(fullBody.RootElement.GetProperty("token_type").GetString(), fastBody.RootElement.GetProperty("token_type").GetString());
        Assert.IsLessThanOrEqualTo(1, Math.Abs(fullBody.RootElement.GetProperty("expires_in").GetInt64() - fastBody.RootElement.GetProperty("expires_in").GetInt64()));

        var (fastHeader, fast) = DecodeJwt(fastBody.RootElement.GetProperty("access_token").GetString()!);
        var (fullHeader, full) = DecodeJwt(fullBody.RootElement.GetProperty("access_token").GetString()!);
        Assert.AreEqual(fullHeader.ToString(), fastHeader.ToString(), "same algorithm, key and type");
        CollectionAssert.AreEquivalent(Names(full), Names(fast));
        foreach (var claim in Names(full).Except(["jti", "iat", "exp"]))
        {
            Assert.AreEqual(full.GetProperty(claim).ToString(), fast.GetProperty(claim).ToString(), claim);
            Assert.AreEqual(full.GetProperty(claim).ToString(), basicToken.GetProperty(claim).ToString(), "basic: " + claim);
        }
        Assert.AreEqual(full.GetProperty("exp").GetInt64() - full.GetProperty("iat").GetInt64(), fast.GetProperty("exp").GetInt64() - fast.GetProperty("iat").GetInt64());
        Assert.AreNotEqual(full.GetProperty("jti").GetString(), fast.GetProperty("jti").GetString());
        await AssertValidAgainstJwksAsync(fastBody.RootElement.GetProperty("access_token").GetString()!, "clippybot-pluginhost", ct, identity);

        static List<string> Names(JsonElement element) => [.. element.EnumerateObject().Select(p => p.Name)];
    }

    [TestMethod]
    public async Task Client_credentials_requests_outside_the_ordinary_case_get_OpenIddicts_answers()
    {
        var ct = TestContext.CancellationToken;
        var client = s_identity.CreateClient();
        Dictionary<string, string> Form(string scope) => new()
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = IdentityHost.ServiceClient,
            ["client_secret"] = IdentityHost.ServiceSecret,
            ["scope"] = scope,
        };

        // A scope the client was not given, a scope nobody registered, and offline_access (no refresh tokens here).
        foreach (var (scope, error) in new[] { ("api", "invalid_request"), ("pluginhost nonsense", "invalid_scope"), ("pluginhost offline_access", "invalid_request") })
        {
            var (status, body) = await TokenAsync(client, Form(scope), ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, status, scope);
            Assert.AreEqual(error, body.GetProperty("error").GetString(), scope + ": " + body);
        }
        // A duplicated parameter is refused, not resolved by picking one.
        using var duplicated = new StringContent($"grant_type=client_credentials&client_id={IdentityHost.ServiceClient}&client_secret={IdentityHost.ServiceSecret}&scope=pluginhost&scope=api",
            System.Text.Encoding.ASCII, "application/x-www-form-urlencoded");
        using var response = await client.PostAsync(new Uri("/connect/token", UriKind.Relative), duplicated, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, response.StatusCode);
        StringAssert.Contains(await response.Content.ReadAsStringAsync(ct), "invalid_request");
    }

    private static Task<HttpResponseMessage> PostTokenAsync(HttpClient client, Dictionary<string, string> form, bool basic, CancellationToken ct,
        string path = "/connect/token")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(path, UriKind.Relative)) { Content = new FormUrlEncodedContent(form) };
        if (basic)
        {
            request.Headers.Authorization = new("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(
                Uri.EscapeDataString(IdentityHost.ServiceClient) + ":" + Uri.EscapeDataString(IdentityHost.ServiceSecret))));
        }
        return client.SendAsync(request, ct);
    }

    [TestMethod]
    public async Task Client_credentials_and_id_tokens_write_no_database_rows_while_user_access_tokens_do()
    {
        var ct = TestContext.CancellationToken;
        var before = await CountTokenRowsAsync(ct);
        await ClientCredentialsAsync(s_identity.CreateClient(), IdentityHost.ServiceClient, IdentityHost.ServiceSecret, ct);
        await ClientCredentialsAsync(s_identity.CreateClient(), IdentityHost.ServiceClient, IdentityHost.ServiceSecret, ct);
        Assert.AreEqual(before, await CountTokenRowsAsync(ct));

        var (code, pkce) = await NewUserCodeAsync(s_identity, ct);
        await RedeemCodeAsync(s_identity.CreateClient(), code, pkce, ct);
        using var connection = new Npgsql.NpgsqlConnection(s_identity.Settings["ConnectionStrings:identitydb"]);
        await connection.OpenAsync(ct);
        using var types = new Npgsql.NpgsqlCommand("SELECT DISTINCT \"Type\" FROM \"OpenIddictTokens\"", connection);
        var stored = new List<string>();
        using (var reader = await types.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
            {
                stored.Add(reader.GetString(0));
            }
        }
        CollectionAssert.Contains(stored, "urn:ietf:params:oauth:token-type:access_token");
        CollectionAssert.Contains(stored, "urn:ietf:params:oauth:token-type:refresh_token");
        CollectionAssert.DoesNotContain(stored, "urn:ietf:params:oauth:token-type:id_token");
    }

    private static async Task<long> CountTokenRowsAsync(CancellationToken ct)
    {
        using var connection = new Npgsql.NpgsqlConnection(s_identity.Settings["ConnectionStrings:identitydb"]);
        await connection.OpenAsync(ct);
        using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM \"OpenIddictTokens\"", connection);
        return (long)(await count.ExecuteScalarAsync(ct))!;
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

    [TestMethod]
    public async Task Discovery_offers_only_code_client_credentials_and_refresh_grants_and_only_S256()
    {
        using var discovery = JsonDocument.Parse(await s_identity.CreateClient().GetStringAsync(new Uri("/.well-known/openid-configuration", UriKind.Relative), TestContext.CancellationToken));
        var grants = discovery.RootElement.GetProperty("grant_types_supported").EnumerateArray().Select(e => e.GetString()).ToArray();
        CollectionAssert.AreEquivalent(new[] { "authorization_code", "client_credentials", "refresh_token" }, grants);
        var methods = discovery.RootElement.GetProperty("code_challenge_methods_supported").EnumerateArray().Select(e => e.GetString()).ToArray();
        CollectionAssert.AreEqual(new[] { "S256" }, methods);
        var responseTypes = discovery.RootElement.GetProperty("response_types_supported").EnumerateArray().Select(e => e.GetString()).ToArray();
        CollectionAssert.AreEqual(new[] { "code" }, responseTypes);
    }

    [TestMethod]
    [DataRow(false, "S256", DisplayName = "no code_challenge")]
    [DataRow(true, "plain", DisplayName = "plain code_challenge_method")]
    public async Task Authorization_requests_without_S256_pkce_are_refused(bool withChallenge, string method)
    {
        using var browser = s_identity.Browser();
        var url = AuthorizeUrl(withChallenge ? Pkce.Create() : null, "state-1", method: method);

        using var response = await browser.GetAsync(new Uri(url, UriKind.Relative), TestContext.CancellationToken);

        // Refused before any login is offered, and no code can come of it.
        Assert.AreEqual(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.IsNull(response.Headers.Location);
        StringAssert.Contains(await response.Content.ReadAsStringAsync(TestContext.CancellationToken), "code_challenge");
    }

    [TestMethod]
    [DataRow("https://evil.test/callback", DisplayName = "foreign host")]
    [DataRow("https://app.test/callback/", DisplayName = "trailing slash")]
    [DataRow("https://app.test/callback?x=1", DisplayName = "extra query")]
    [DataRow("http://app.test/callback", DisplayName = "other scheme")]
    public async Task Unregistered_redirect_uri_gets_an_error_page_and_no_redirect(string redirectUri)
    {
        using var browser = s_identity.Browser();
        using var response = await browser.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "s", redirectUri), UriKind.Relative), TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.IsNull(response.Headers.Location);
        StringAssert.Contains(await response.Content.ReadAsStringAsync(TestContext.CancellationToken), "redirect_uri");
    }

    [TestMethod]
    public async Task Replayed_code_is_refused_and_revokes_the_tokens_of_its_first_redemption()
    {
        var ct = TestContext.CancellationToken;
        var (code, pkce) = await NewUserCodeAsync(s_identity, ct);
        var client = s_identity.CreateClient();
        var (firstStatus, first) = await RedeemCodeAsync(client, code, pkce, ct);
        Assert.AreEqual(HttpStatusCode.OK, firstStatus);

        var (replayStatus, replay) = await RedeemCodeAsync(client, code, pkce, ct);

        Assert.AreEqual(HttpStatusCode.BadRequest, replayStatus);
        Assert.AreEqual("invalid_grant", replay.GetProperty("error").GetString());
        Assert.IsFalse(await IsActiveAsync(client, first.GetProperty("refresh_token").GetString()!, ct), "refresh token from the first redemption");
        Assert.IsFalse(await IsActiveAsync(client, first.GetProperty("access_token").GetString()!, ct), "access token from the first redemption");
    }

    [TestMethod]
    public async Task Refresh_rotates_the_refresh_token_and_reuse_revokes_the_whole_chain()
    {
        var ct = TestContext.CancellationToken;
        var (code, pkce) = await NewUserCodeAsync(s_identity, ct);
        var client = s_identity.CreateClient();
        var (_, first) = await RedeemCodeAsync(client, code, pkce, ct);
        var refresh1 = first.GetProperty("refresh_token").GetString()!;

        var (status2, second) = await RefreshAsync(client, refresh1, ct);
        Assert.AreEqual(HttpStatusCode.OK, status2, second.ToString());
        var refresh2 = second.GetProperty("refresh_token").GetString()!;
        Assert.AreNotEqual(refresh1, refresh2, "a new refresh token on every use");
        var (_, secondAccess) = DecodeJwt(second.GetProperty("access_token").GetString()!);
        Assert.AreEqual("clippybot-api", Audience(secondAccess));

        // The old token again: reuse. The whole chain dies, including the newest token.
        var (reuseStatus, reuse) = await RefreshAsync(client, refresh1, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, reuseStatus);
        Assert.AreEqual("invalid_grant", reuse.GetProperty("error").GetString());
        var (afterStatus, _) = await RefreshAsync(client, refresh2, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, afterStatus, "the newest refresh token of the chain is revoked too");
        Assert.IsFalse(await IsActiveAsync(client, second.GetProperty("access_token").GetString()!, ct));
    }

    [TestMethod]
    public async Task Changing_the_password_kills_every_refresh_token_and_publishes_a_revocation_marker()
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_identity.Browser();
        var (_, code, pkce) = await RegisterAndSignInAsync(browser, ct);
        var client = s_identity.CreateClient();
        var (_, tokens) = await RedeemCodeAsync(client, code, pkce, ct);
        var subject = DecodeJwt(tokens.GetProperty("access_token").GetString()!).Payload.GetProperty("sub").GetString()!;

        using var change = await PostFormAsync(browser, "/account/manage/password", new Dictionary<string, string>
        {
            ["CurrentPassword"] = GoodPassword,
            ["NewPassword"] = "a brand new passphrase 2026",
        }, ct);
        Assert.AreEqual(HttpStatusCode.OK, change.StatusCode);
        StringAssert.Contains(await change.Content.ReadAsStringAsync(ct), "Your password was changed");

        var (status, refused) = await RefreshAsync(client, tokens.GetProperty("refresh_token").GetString()!, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, status);
        Assert.AreEqual("invalid_grant", refused.GetProperty("error").GetString());

        await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
        var marker = await redis.GetDatabase().StringGetAsync(ClippyBot.Contracts.RevocationKeys.RevokedBefore(subject));
        Assert.IsTrue(marker.HasValue, "revocation marker published");
        var issuedAt = DecodeJwt(tokens.GetProperty("access_token").GetString()!).Payload.GetProperty("iat").GetInt64();
        Assert.IsGreaterThanOrEqualTo(issuedAt, (long)marker);
    }

    private static string Audience(JsonElement payload) =>
        payload.GetProperty("aud").ValueKind == JsonValueKind.Array ? payload.GetProperty("aud")[0].GetString()! : payload.GetProperty("aud").GetString()!;

    /// <summary>Validates like a resource server: keys from JWKS, issuer, audience, lifetime, signature.</summary>
    private static async Task AssertValidAgainstJwksAsync(string token, string audience, CancellationToken ct, ServiceFactory<IdentityDataContext>? identity = null)
    {
        var client = (identity ?? s_identity).CreateClient();
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
