using System.Net;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>
/// A person is asked before a third-party app gets anything: the first time, for more scopes and on prompt=consent; the
/// answer is remembered; denying tells the app access_denied; a forged "allow" grants nothing; disconnecting ends the
/// app's tokens at once. First-party apps never ask. Real Identity, PostgreSQL, Redis-protocol server, SMTP.
/// </summary>
[TestClass]
public sealed class ConsentTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_identity = await IdentityHost.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_identity.DisposeAsync();

    [TestMethod]
    public async Task A_third_party_app_asks_once_says_what_each_scope_grants_and_the_answer_is_remembered()
    {
        using var browser = await SignedInPersonAsync();
        using var page = await AuthorizeAsync(browser, IdentityHost.ThirdPartyClient, "openid api");
        Assert.AreEqual(HttpStatusCode.OK, page.StatusCode, "asked, not redirected");
        var html = await page.Content.ReadAsStringAsync(Ct);
        StringAssert.Contains(html, "data-scope=\"api\"");
        StringAssert.Contains(html, "is not made by ClippyBot");
        Assert.AreEqual("DENY", page.Headers.GetValues("X-Frame-Options").Single(), "the Allow button cannot be framed");
        using var allowed = await AnswerConsentAsync(browser, page, "allow", Ct);
        Assert.IsNotNull(CodeIn(allowed));

        using var again = await AuthorizeAsync(browser, IdentityHost.ThirdPartyClient, "openid api");
        Assert.IsNotNull(CodeIn(again), "remembered: no page the second time");
        using var firstParty = await AuthorizeAsync(browser, IdentityHost.DevClient, "openid api");
        Assert.IsNotNull(CodeIn(firstParty), "ClippyBot's own apps never ask");
    }

    [TestMethod]
    public async Task More_scopes_or_prompt_consent_ask_again_with_the_new_scopes_marked()
    {
        using var browser = await SignedInPersonAsync();
        using (var first = await AuthorizeAsync(browser, IdentityHost.ThirdPartyClient, "openid"))
        using (var allowed = await AnswerConsentAsync(browser, first, "allow", Ct))
        {
            Assert.IsNotNull(CodeIn(allowed));
        }
        using var more = await AuthorizeAsync(browser, IdentityHost.ThirdPartyClient, "openid api");
        var html = await more.Content.ReadAsStringAsync(Ct);
        StringAssert.Contains(html, "data-scope=\"api\">Use ClippyBot&#x27;s API as you");
        StringAssert.Contains(html, "<strong>(new)</strong>");
        using (var allowedMore = await AnswerConsentAsync(browser, more, "allow", Ct))
        {
            Assert.IsNotNull(CodeIn(allowedMore));
        }
        using var forced = await AuthorizeAsync(browser, IdentityHost.ThirdPartyClient, "openid api", prompt: "consent");
        Assert.AreEqual(HttpStatusCode.OK, forced.StatusCode, "prompt=consent always asks");
        using var answered = await AnswerConsentAsync(browser, forced, "allow", Ct);
        Assert.IsNotNull(CodeIn(answered), "answering it does not ask again in a loop");
    }

    [TestMethod]
    public async Task Denying_sends_access_denied_to_the_app_and_remembers_nothing()
    {
        using var browser = await SignedInPersonAsync();
        using var page = await AuthorizeAsync(browser, IdentityHost.ThirdPartyClient, "openid api");
        using var denied = await AnswerConsentAsync(browser, page, "deny", Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, denied.StatusCode);
        StringAssert.StartsWith(denied.Headers.Location!.ToString(), IdentityHost.WebRedirect);
        var query = QueryHelpers.ParseQuery(denied.Headers.Location.Query);
        Assert.AreEqual("access_denied", query["error"].ToString());
        Assert.AreEqual("consent-state", query["state"].ToString());
        using var again = await AuthorizeAsync(browser, IdentityHost.ThirdPartyClient, "openid api");
        Assert.AreEqual(HttpStatusCode.OK, again.StatusCode, "asked again");
    }

    [TestMethod]
    public async Task A_silent_request_gets_consent_required_and_a_forged_allow_without_the_page_token_grants_nothing()
    {
        using var browser = await SignedInPersonAsync();
        using var silent = await AuthorizeAsync(browser, IdentityHost.ThirdPartyClient, "openid api", prompt: "none");
        Assert.AreEqual("consent_required", QueryHelpers.ParseQuery(silent.Headers.Location!.Query)["error"].ToString());

        // Another site posts "allow" into the person's signed-in browser (cookies go along; the page's token does not).
        var pkce = Pkce.Create();
        var parameters = QueryHelpers.ParseQuery(new Uri("https://x" + AuthorizeUrl(pkce, "forged", scope: "openid api", clientId: IdentityHost.ThirdPartyClient)).Query)
            .Select(p => new KeyValuePair<string, string>(p.Key, p.Value.ToString())).Append(new("consent_decision", "allow")).ToList();
        using var content = new FormUrlEncodedContent(parameters);
        using var forged = await browser.PostAsync(new Uri("/connect/authorize", UriKind.Relative), content, Ct);
        Assert.AreEqual(HttpStatusCode.OK, forged.StatusCode, "the consent page again, no code");
        StringAssert.Contains(await forged.Content.ReadAsStringAsync(Ct), "consent_decision");
        await using var scope = s_identity.Services.CreateAsyncScope();
        Assert.AreEqual(0, await scope.ServiceProvider.GetRequiredService<IdentityDataContext>().AppConsents.CountAsync(c => c.ClientId == IdentityHost.ThirdPartyClient && c.Scopes.Contains("api") && c.GrantedAt > DateTimeOffset.UtcNow.AddMinutes(-1) && c.UserId == _lastUser, Ct));
    }

    [TestMethod]
    public async Task Disconnecting_an_app_ends_its_refresh_and_access_tokens_at_once_and_it_must_ask_again()
    {
        string clientId;
        await using (var scope = s_identity.Services.CreateAsyncScope())
        {
            var (created, errors) = await scope.ServiceProvider.GetRequiredService<ClippyBot.Identity.Apps.AppRegistry>().CreateAsync(Guid.NewGuid(), new ClippyBot.Identity.Apps.AppRegistration
            {
                ClientName = "Calendar bridge",
                TokenEndpointAuthMethod = "none",
                GrantTypes = ["authorization_code", "refresh_token"],
                RedirectUris = [IdentityHost.WebRedirect],
                Scope = "openid offline_access api",
            }, withRegistrationToken: false, Ct);
            Assert.IsNotNull(created, string.Join("; ", errors));
            clientId = created.App.ClientId;
        }
        using var browser = await SignedInPersonAsync();
        var pkce = Pkce.Create();
        using var page = await browser.GetAsync(new Uri(AuthorizeUrl(pkce, "cal", scope: "openid offline_access api", clientId: clientId), UriKind.Relative), Ct);
        using var allowed = await AnswerConsentAsync(browser, page, "allow", Ct);
        var (_, tokens) = await RedeemCodeAsync(s_identity.CreateClient(), CodeIn(allowed)!, pkce, Ct, clientId);
        var refresh = tokens.GetProperty("refresh_token").GetString()!;
        var sid = DecodeJwt(tokens.GetProperty("access_token").GetString()!).Payload.GetProperty("sid").GetString()!;

        using var listed = await browser.GetAsync(new Uri("/account/manage/apps", UriKind.Relative), Ct);
        var list = await listed.Content.ReadAsStringAsync(Ct);
        StringAssert.Contains(list, "Calendar bridge");
        StringAssert.Contains(list, "Keep access while you are away");
        // An app id that is not theirs finds nothing to disconnect.
        using (var foreign = await AppFlows.PostPageAsync(browser, "/account/manage/apps", "Disconnect", [new("clientId", "app_not-theirs")], Ct))
        {
            StringAssert.Contains(await foreign.Content.ReadAsStringAsync(Ct), "was not connected");
        }
        using var disconnected = await AppFlows.PostPageAsync(browser, "/account/manage/apps", "Disconnect", [new("clientId", clientId)], Ct);
        StringAssert.Contains(await disconnected.Content.ReadAsStringAsync(Ct), "Disconnected");

        var (refused, body) = await TokenAsync(s_identity.CreateClient(), new Dictionary<string, string>
        {
            ["grant_type"] = "refresh_token", ["client_id"] = clientId, ["refresh_token"] = refresh,
        }, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, refused, body.ToString());
        Assert.AreEqual("invalid_grant", body.GetProperty("error").GetString());
        await using var redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
        Assert.IsTrue(await redis.GetDatabase().KeyExistsAsync(ClippyBot.Contracts.RevocationKeys.RevokedSession(sid)), "resource servers refuse its access token now");
        using var asksAgain = await browser.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "cal2", scope: "openid api", clientId: clientId), UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.OK, asksAgain.StatusCode, "the app must ask again");

    }

    private Guid _lastUser;

    private async Task<HttpClient> SignedInPersonAsync()
    {
        var browser = s_identity.Browser();
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, Ct);
        await s_identity.ConfirmEmailAsync(email);
        using (var login = await LoginAsync(browser, email, GoodPassword, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Redirect, login.StatusCode);
        }
        await using var scope = s_identity.Services.CreateAsyncScope();
        _lastUser = (await scope.ServiceProvider.GetRequiredService<IdentityDataContext>().Users.SingleAsync(u => u.Email == email, Ct)).Id;
        return browser;
    }

    private async Task<HttpResponseMessage> AuthorizeAsync(HttpClient browser, string clientId, string scope, string? prompt = null)
    {
        var url = AuthorizeUrl(Pkce.Create(), "consent-state", scope: scope, clientId: clientId) + (prompt is null ? "" : "&prompt=" + prompt);
        return await browser.GetAsync(new Uri(url, UriKind.Relative), Ct);
    }

    private static string? CodeIn(HttpResponseMessage response) =>
        response.StatusCode == HttpStatusCode.Redirect && response.Headers.Location!.ToString().StartsWith(IdentityHost.WebRedirect, StringComparison.Ordinal)
            ? QueryHelpers.ParseQuery(response.Headers.Location.Query)["code"].ToString() is { Length: > 0 } code ? code : null
            : null;
}
