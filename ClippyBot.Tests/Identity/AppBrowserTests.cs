using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Microsoft.Playwright;

namespace ClippyBot.Tests.Identity;

/// <summary>
/// In a real Chromium against Identity on a real socket: a developer registers a public app on the developer page, and a
/// relying party runs the certified flow against it — code + PKCE (S256) with state and nonce through the sign-in and
/// consent pages, ID token checked against the JWKS, refresh rotation (the used token refused), RP-initiated logout to
/// the registered post-logout URI. The app's own site is not on this machine: its pages are answered by the browser
/// context. Every page is screenshotted into the test results.
/// </summary>
[TestClass]
public sealed class AppBrowserTests
{
    private const string AppOrigin = "https://rp.example";
    private IPage _page = null!;
    private int _shot;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(240_000, CooperativeCancellation = true)]
    public async Task A_developer_registers_a_public_app_and_a_relying_party_signs_a_person_in_through_the_consent_page_refreshes_and_logs_out()
    {
        var ct = TestContext.CancellationToken;
        await using var identity = await IdentityHost.CreateAsync(ct);
        identity.UseKestrel(0);
        identity.StartServer();
        var port = new Uri(identity.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        var origin = $"http://localhost:{port}";
        using var backChannel = new HttpClient { BaseAddress = new Uri(origin) };
        await Poll.UntilAsync(async () => (await backChannel.GetAsync(new Uri("/health", UriKind.Relative), ct)).IsSuccessStatusCode, TimeSpan.FromSeconds(60), "identity healthy", ct);

        await using var browser = await Browser.LaunchAsync();
        // The developer: a verified account, signed in on the page.
        var developerEmail = OidcFlows.NewEmail();
        await using var developerContext = await browser.Chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = origin });
        _page = await developerContext.NewPageAsync();
        await SignUpAndInAsync(identity, developerEmail);
        await _page.GotoAsync("/developers/apps");
        await ShotAsync("developer-apps-empty");
        await _page.GetByLabel("App name").FillAsync("Pocket planner");
        await _page.GetByLabel("Single-page or web app without a server secret (public: code + PKCE)").CheckAsync();
        await _page.Locator("input[name='Form.GrantTypes'][value='refresh_token']").CheckAsync();
        await _page.GetByLabel("Redirect URIs (one a line; exact, https — or for a native app http://127.0.0.1 or its own scheme)").FillAsync(AppOrigin + "/callback");
        await _page.GetByLabel("Post-logout redirect URIs (one a line)").FillAsync(AppOrigin + "/signed-out");
        foreach (var scope in new[] { "profile", "offline_access", "api" })
        {
            await _page.Locator($"input[name='Form.Scopes'][value='{scope}']").CheckAsync();
        }
        await ShotAsync("developer-app-form");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Register" }).ClickAsync();
        var clientId = await _page.Locator("[data-client-id]").First.InnerTextAsync();
        StringAssert.StartsWith(clientId, "app_");
        Assert.AreEqual(0, await _page.Locator("[data-client-secret]").CountAsync(), "a public app has no secret");
        await ShotAsync("developer-app-registered");

        // The person, in their own browser; the app's site is answered by the browser context (no network here).
        var email = OidcFlows.NewEmail();
        await using var personContext = await browser.Chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = origin });
        await personContext.RouteAsync(AppOrigin + "/**", route => route.FulfillAsync(new() { Status = 200, ContentType = "text/html", Body = "<!DOCTYPE html><title>Pocket planner</title><p>Back at the app.</p>" }));
        _page = await personContext.NewPageAsync();
        await SignUpAndInAsync(identity, email);
        var pkce = OidcFlows.Pkce.Create();
        var (state, nonce) = (Guid.NewGuid().ToString("N"), Guid.NewGuid().ToString("N"));
        var authorize = QueryHelpers.AddQueryString("/connect/authorize", new Dictionary<string, string?>
        {
            ["client_id"] = clientId, ["response_type"] = "code", ["redirect_uri"] = AppOrigin + "/callback",
            ["scope"] = "openid profile offline_access api", ["state"] = state, ["nonce"] = nonce,
            ["code_challenge"] = pkce.Challenge, ["code_challenge_method"] = "S256",
        });
        await _page.GotoAsync(authorize);
        await Assertions.Expect(_page.GetByRole(AriaRole.Heading)).ToContainTextAsync("Allow Pocket planner to use your ClippyBot account?");
        await Assertions.Expect(_page.Locator("li[data-scope='offline_access']")).ToContainTextAsync("Keep access while you are away");
        await ShotAsync("consent");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Allow" }).ClickAsync();
        await _page.WaitForURLAsync(AppOrigin + "/callback**");
        var callback = QueryHelpers.ParseQuery(new Uri(_page.Url).Query);
        Assert.AreEqual(state, callback["state"].ToString());
        await ShotAsync("back-at-the-app");

        // The relying party's back channel: code + verifier, ID token checked against the published keys.
        var (status, tokens) = await OidcFlows.RedeemCodeAsync(backChannel, callback["code"].ToString(), pkce, ct, clientId, AppOrigin + "/callback");
        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        var idToken = tokens.GetProperty("id_token").GetString()!;
        var keys = new JsonWebKeySet(await backChannel.GetStringAsync(new Uri("/.well-known/jwks", UriKind.Relative), ct));
        var validated = await new JsonWebTokenHandler().ValidateTokenAsync(idToken, new TokenValidationParameters
        {
            ValidIssuer = origin + "/", ValidAudience = clientId, IssuerSigningKeys = keys.GetSigningKeys(),
        });
        Assert.IsTrue(validated.IsValid, validated.Exception?.Message);
        Assert.AreEqual(nonce, validated.Claims["nonce"]);
        var refresh = tokens.GetProperty("refresh_token").GetString()!;
        var (rotated, next) = await OidcFlows.TokenAsync(backChannel, new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["client_id"] = clientId, ["refresh_token"] = refresh }, ct);
        Assert.AreEqual(HttpStatusCode.OK, rotated, next.ToString());
        var (reused, _) = await OidcFlows.TokenAsync(backChannel, new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["client_id"] = clientId, ["refresh_token"] = refresh }, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, reused, "a used refresh token is refused");

        // The connected-apps page shows it; then RP-initiated logout returns to the registered URI and ends the browser session.
        await _page.GotoAsync("/account/manage/apps");
        await Assertions.Expect(_page.Locator($"li[data-app='{clientId}']")).ToContainTextAsync("Pocket planner");
        await ShotAsync("connected-apps");
        // The app's own "sign out" link, as its page would carry it.
        var endSession = origin + QueryHelpers.AddQueryString("/connect/endsession", new Dictionary<string, string?>
        {
            ["id_token_hint"] = idToken, ["post_logout_redirect_uri"] = AppOrigin + "/signed-out", ["state"] = "bye",
        });
        await personContext.RouteAsync(AppOrigin + "/account", route => route.FulfillAsync(new()
        {
            Status = 200, ContentType = "text/html", Body = $"<!DOCTYPE html><title>Pocket planner</title><a href=\"{WebUtility.HtmlEncode(endSession)}\">Sign out</a>",
        }));
        await _page.GotoAsync(AppOrigin + "/account");
        await _page.GetByRole(AriaRole.Link, new() { Name = "Sign out" }).ClickAsync();
        await _page.WaitForURLAsync(AppOrigin + "/signed-out**");
        Assert.AreEqual("bye", QueryHelpers.ParseQuery(new Uri(_page.Url).Query)["state"].ToString());
        await _page.GotoAsync("/account/manage");
        StringAssert.StartsWith(new Uri(_page.Url).AbsolutePath, "/account/login", "signed out of ClippyBot");
        await ShotAsync("signed-out");
    }

    private async Task SignUpAndInAsync(ServiceFactory<IdentityDataContext> identity, string email)
    {
        await _page.GotoAsync("/account/register");
        await _page.GetByLabel("Email").FillAsync(email);
        await _page.GetByLabel("Password").FillAsync(OidcFlows.GoodPassword);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        // The address is verified as the mailed link would (the link's own flow is AccountBrowserTests').
        await identity.ConfirmEmailAsync(email);
        await _page.GotoAsync("/account/login");
        await _page.GetByLabel("Email").FillAsync(email);
        await _page.GetByLabel("Password").FillAsync(OidcFlows.GoodPassword);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(_page).Not.ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/account/login"));
    }

    private async Task ShotAsync(string name)
    {
        var path = Path.Combine(TestContext.TestResultsDirectory ?? Path.GetTempPath(), $"apps-{++_shot:00}-{name}.png");
        await _page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.AddResultFile(path);
    }
}
