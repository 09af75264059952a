using System.Net;
using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using ClippyBot.Tests.Rig;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>The first-party browser client's refresh token lives in an HttpOnly cookie and never in a response body.</summary>
[TestClass]
public sealed class RefreshCookieTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_identity = await IdentityHost.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_identity.DisposeAsync();

    [TestMethod]
    public async Task Web_client_gets_its_refresh_token_only_as_a_host_only_httponly_strict_cookie_and_refreshes_with_it()
    {
        var ct = TestContext.CancellationToken;
        var (app, first) = await SignInWebClientAsync(ct);
        Assert.IsFalse(first.Body.TryGetProperty("refresh_token", out _), "no refresh token in the JSON body");
        var cookie = RefreshCookie(first.SetCookie);
        StringAssert.Contains(cookie, "httponly");
        StringAssert.Contains(cookie, "secure");
        StringAssert.Contains(cookie, "samesite=strict");
        StringAssert.Contains(cookie, "path=/");
        Assert.IsFalse(cookie.Contains("domain=", StringComparison.Ordinal), "__Host- cookies carry no domain");

        var (status, body, setCookie) = await CookieRefreshAsync(app, IdentityHost.WebOrigin, csrfHeader: true, ct);

        Assert.AreEqual(HttpStatusCode.OK, status, body.ToString());
        Assert.IsTrue(body.TryGetProperty("access_token", out _));
        Assert.IsFalse(body.TryGetProperty("refresh_token", out _));
        Assert.AreNotEqual(CookieValue(first.SetCookie), CookieValue(setCookie), "the cookie carries the rotated refresh token");
    }

    [TestMethod]
    [DataRow(false, IdentityHost.WebOrigin, DisplayName = "no CSRF header")]
    [DataRow(true, "https://evil.test", DisplayName = "foreign origin")]
    [DataRow(true, "", DisplayName = "no origin")]
    public async Task Cookie_refresh_without_the_header_or_from_a_foreign_origin_is_refused(bool csrfHeader, string origin)
    {
        var ct = TestContext.CancellationToken;
        var (app, _) = await SignInWebClientAsync(ct);

        var (status, body, _) = await CookieRefreshAsync(app, origin, csrfHeader, ct);

        Assert.AreEqual(HttpStatusCode.BadRequest, status);
        Assert.AreEqual("invalid_request", body.GetProperty("error").GetString());
        // The legitimate request still works: a refused attempt burns nothing.
        var (retry, _, _) = await CookieRefreshAsync(app, IdentityHost.WebOrigin, csrfHeader: true, ct);
        Assert.AreEqual(HttpStatusCode.OK, retry);
    }

    [TestMethod]
    public async Task Web_client_refresh_token_in_a_body_is_refused()
    {
        var ct = TestContext.CancellationToken;
        var (app, first) = await SignInWebClientAsync(ct);

        var (status, body) = await TokenAsync(s_identity.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token",
            ["client_id"] = IdentityHost.WebClient,
            ["refresh_token"] = CookieValue(first.SetCookie),
        }, ct);

        Assert.AreEqual(HttpStatusCode.BadRequest, status);
        Assert.AreEqual("invalid_request", body.GetProperty("error").GetString());
        app.Dispose();
    }

    [TestMethod]
    public async Task Cors_preflight_allows_only_the_clients_origin_with_credentials()
    {
        var ct = TestContext.CancellationToken;
        async Task<HttpResponseMessage> PreflightAsync(string origin)
        {
            using var request = new HttpRequestMessage(HttpMethod.Options, "/connect/token");
            request.Headers.Add("Origin", origin);
            request.Headers.Add("Access-Control-Request-Method", "POST");
            request.Headers.Add("Access-Control-Request-Headers", RefreshTokenCookie.CsrfHeader);
            return await s_identity.CreateClient().SendAsync(request, ct);
        }

        using var allowed = await PreflightAsync(IdentityHost.WebOrigin);
        using var foreign = await PreflightAsync("https://evil.test");

        Assert.AreEqual(IdentityHost.WebOrigin, allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());
        Assert.AreEqual("true", allowed.Headers.GetValues("Access-Control-Allow-Credentials").Single());
        Assert.IsFalse(foreign.Headers.Contains("Access-Control-Allow-Origin"));
    }

    /// <summary>Signs a new user in through clippybot-web; returns the "app" client holding the refresh cookie.</summary>
    private static async Task<(HttpClient App, (JsonElement Body, string SetCookie) First)> SignInWebClientAsync(CancellationToken ct)
    {
        using var browser = s_identity.Browser();
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, ct);
        var pkce = Pkce.Create();
        var code = await SignInForCodeAsync(browser, email, GoodPassword, pkce, ct, IdentityHost.WebClient);

        var app = s_identity.Browser();
        using var content = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["client_id"] = IdentityHost.WebClient,
            ["code"] = code,
            ["redirect_uri"] = IdentityHost.WebRedirect,
            ["code_verifier"] = pkce.Verifier,
        });
        using var response = await app.PostAsync(new Uri("/connect/token", UriKind.Relative), content, ct);
        var json = await response.Content.ReadAsStringAsync(ct);
        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode, json);
        using var doc = JsonDocument.Parse(json);
        return (app, (doc.RootElement.Clone(), RefreshCookie(response)));
    }

    private static async Task<(HttpStatusCode Status, JsonElement Body, string SetCookie)> CookieRefreshAsync(HttpClient app, string origin, bool csrfHeader, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["client_id"] = IdentityHost.WebClient }),
        };
        if (origin.Length > 0)
        {
            request.Headers.Add("Origin", origin);
        }
        if (csrfHeader)
        {
            request.Headers.Add(RefreshTokenCookie.CsrfHeader, "1");
        }
        using var response = await app.SendAsync(request, ct);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return (response.StatusCode, doc.RootElement.Clone(), response.StatusCode == HttpStatusCode.OK ? RefreshCookie(response) : "");
    }

    private static string RefreshCookie(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Set-Cookie", out var values)
            ? values.Single(v => v.StartsWith(RefreshTokenCookie.Name + "=", StringComparison.Ordinal))
            : throw new AssertFailedException("no Set-Cookie");

    private static string RefreshCookie(string setCookie) => setCookie.ToLowerInvariant();

    private static string CookieValue(string setCookie) => setCookie.Split(';')[0][(RefreshTokenCookie.Name.Length + 1)..];
}
