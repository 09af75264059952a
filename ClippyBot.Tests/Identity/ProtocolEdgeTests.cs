using System.Net;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>Revocation, end-session, absolute login lifetime and the token endpoint throttle.</summary>
[TestClass]
public sealed class ProtocolEdgeTests
{
    private static readonly FakeTimeProvider Clock = new(DateTimeOffset.UtcNow);
    private static ServiceFactory<IdentityDataContext> s_identity = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) =>
        s_identity = await IdentityHost.StartAsync(context.CancellationToken, new Dictionary<string, string?>
        {
            ["Oidc:RefreshTokenAbsoluteLifetime"] = "01:00:00",
            ["LoginThrottle:MaxAttemptsPerWindow"] = "1000",
        }, services => services.AddSingleton<TimeProvider>(Clock));

    [ClassCleanup]
    public static async Task StopAsync() => await s_identity.DisposeAsync();

    [TestMethod]
    public async Task A_parameter_sent_twice_is_refused_at_the_authorization_and_introspection_endpoints()
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_identity.Browser();
        // A second state would let the server pick which one the client gets back.
        var authorize = AuthorizeUrl(Pkce.Create(), "first") + "&state=second";
        using var refused = await browser.GetAsync(new Uri(authorize, UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.IsNull(refused.Headers.Location, "nothing is sent to the redirect URI");
        StringAssert.Contains(await refused.Content.ReadAsStringAsync(ct), "state");
        using var ok = await browser.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "only"), UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Redirect, ok.StatusCode, "the same request with one state goes on to the login page");

        using var introspection = new StringContent(
            $"token=a&token=b&client_id={IdentityHost.ApiResourceClient}&client_secret={IdentityHost.ApiResourceSecret}",
            System.Text.Encoding.ASCII, "application/x-www-form-urlencoded");
        using var response = await s_identity.CreateClient().PostAsync(new Uri("/connect/introspect", UriKind.Relative), introspection, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, response.StatusCode);
        StringAssert.Contains(await response.Content.ReadAsStringAsync(ct), "invalid_request");
    }

    [TestMethod]
    public async Task An_address_with_too_many_failed_token_requests_is_refused_even_with_the_right_secret_until_its_window_ends()
    {
        var ct = TestContext.CancellationToken;
        // Its own client address and clock: failures and blocks are shared through Redis with every other Identity host
        // of the test run, as with replicas, so this one must not look like their clients.
        var address = System.Net.IPAddress.Parse($"203.0.113.{Random.Shared.Next(1, 255)}");
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow.AddYears(5).AddMinutes(Random.Shared.Next(1_000_000)));
        await using var identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?>
        {
            ["TokenThrottle:MaxFailuresPerWindow"] = "3",
            ["TokenThrottle:Window"] = "00:05:00",
        }, services => services.AddSingleton<TimeProvider>(clock).AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter>(new ClientAddress(address)));
        var client = identity.CreateClient();
        for (var i = 0; i < 3; i++)
        {
            var (status, body) = await ClientCredentialsAsync(client, i == 1 ? "no-such-client" : IdentityHost.ServiceClient, "wrong-secret", ct);
            Assert.AreEqual(HttpStatusCode.Unauthorized, status, body.ToString());
        }

        using var blocked = await client.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = IdentityHost.ServiceClient, ["client_secret"] = IdentityHost.ServiceSecret, ["scope"] = "pluginhost",
        }), ct);
        Assert.AreEqual(HttpStatusCode.TooManyRequests, blocked.StatusCode, "the right secret does not get through a blocked address");
        Assert.IsNotNull(blocked.Headers.RetryAfter);
        StringAssert.Contains(await blocked.Content.ReadAsStringAsync(ct), "invalid_request");
        Assert.IsFalse(await IntrospectionIsServedAsync(client, ct), "introspection is refused too");

        clock.Advance(TimeSpan.FromMinutes(5));
        var (after, tokens) = await ClientCredentialsAsync(client, IdentityHost.ServiceClient, IdentityHost.ServiceSecret, ct);
        Assert.AreEqual(HttpStatusCode.OK, after, tokens.ToString());
    }

    /// <summary>Gives every request of a test host one client address (the test server has none).</summary>
    internal sealed class ClientAddress(System.Net.IPAddress address) : Microsoft.AspNetCore.Hosting.IStartupFilter
    {
        public Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> Configure(Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> next) => app =>
        {
            app.Use(following => context =>
            {
                context.Connection.RemoteIpAddress = address;
                return following(context);
            });
            next(app);
        };
    }

    private static async Task<bool> IntrospectionIsServedAsync(HttpClient client, CancellationToken ct)
    {
        using var content = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = "x", ["client_id"] = IdentityHost.ApiResourceClient, ["client_secret"] = IdentityHost.ApiResourceSecret,
        });
        using var response = await client.PostAsync(new Uri("/connect/introspect", UriKind.Relative), content, ct);
        return response.StatusCode != HttpStatusCode.TooManyRequests;
    }

    [TestMethod]
    public async Task A_revoked_refresh_token_no_longer_refreshes()
    {
        var ct = TestContext.CancellationToken;
        var tokens = await NewLoginAsync(s_identity, ct);
        using var revoke = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["token"] = tokens.Refresh,
            ["token_type_hint"] = "refresh_token",
            ["client_id"] = IdentityHost.DevClient,
        });
        using var response = await s_identity.CreateClient().PostAsync(new Uri("/connect/revoke", UriKind.Relative), revoke, ct);
        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode);

        var (status, body) = await RefreshAsync(s_identity.CreateClient(), tokens.Refresh, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, status);
        Assert.AreEqual("invalid_grant", body.GetProperty("error").GetString());
    }

    [TestMethod]
    public async Task A_login_cannot_be_refreshed_past_its_absolute_lifetime()
    {
        var ct = TestContext.CancellationToken;
        var tokens = await NewLoginAsync(s_identity, ct);
        var (early, second) = await RefreshAsync(s_identity.CreateClient(), tokens.Refresh, ct);
        Assert.AreEqual(HttpStatusCode.OK, early);

        // The clock only moves forward; the other tests here do not depend on where it stands.
        Clock.Advance(TimeSpan.FromHours(2));
        var (status, body) = await RefreshAsync(s_identity.CreateClient(), second.GetProperty("refresh_token").GetString()!, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, status);
        StringAssert.Contains(body.GetProperty("error_description").GetString(), "maximum lifetime");
    }

    [TestMethod]
    public async Task End_session_accepts_the_id_token_as_hint()
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_identity.Browser();
        var (_, code, pkce) = await RegisterAndSignInAsync(browser, ct, IdentityHost.WebClient);
        var (_, tokens) = await RedeemCodeAsync(s_identity.CreateClient(), code, pkce, ct, IdentityHost.WebClient);

        using var response = await browser.GetAsync(new Uri(QueryHelpers.AddQueryString("/connect/endsession", new Dictionary<string, string?>
        {
            ["id_token_hint"] = tokens.GetProperty("id_token").GetString(),
            ["post_logout_redirect_uri"] = IdentityHost.WebSignedOut,
        }), UriKind.Relative), ct);

        Assert.AreEqual(HttpStatusCode.Redirect, response.StatusCode, await response.Content.ReadAsStringAsync(ct));
        StringAssert.StartsWith(response.Headers.Location!.ToString(), IdentityHost.WebSignedOut);
    }

    [TestMethod]
    public async Task End_session_signs_out_and_redirects_only_to_a_registered_post_logout_uri()
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_identity.Browser();
        var (_, code, pkce) = await RegisterAndSignInAsync(browser, ct, IdentityHost.WebClient);

        using var foreign = await browser.GetAsync(new Uri(QueryHelpers.AddQueryString("/connect/endsession", new Dictionary<string, string?>
        {
            ["client_id"] = IdentityHost.WebClient,
            ["post_logout_redirect_uri"] = "https://evil.test/bye",
        }), UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, foreign.StatusCode);
        Assert.IsNull(foreign.Headers.Location);

        // Without an id_token_hint the person confirms on a page first (no logout CSRF); the form posts the same request back.
        var parameters = new Dictionary<string, string>
        {
            ["client_id"] = IdentityHost.WebClient,
            ["post_logout_redirect_uri"] = IdentityHost.WebSignedOut,
            ["state"] = "bye",
        };
        using var registered = await PostFormAsync(browser, QueryHelpers.AddQueryString("/connect/endsession", parameters!), parameters, ct);
        Assert.AreEqual(HttpStatusCode.Redirect, registered.StatusCode);
        StringAssert.StartsWith(registered.Headers.Location!.ToString(), IdentityHost.WebSignedOut);

        // The browser session is gone: authorizing again asks for the password.
        using var again = await browser.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "s", clientId: IdentityHost.WebClient), UriKind.Relative), ct);
        StringAssert.StartsWith(again.Headers.Location!.AbsolutePath, "/account/login");
        Assert.IsFalse(string.IsNullOrEmpty(code));
    }
}
