using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.Playwright;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// The README's five-minute tour, followed in a real Chromium against the whole system the AppHost starts: sign up on
/// Identity's page, the verification mail in the development inbox and its confirmation, a token from the development
/// client (code + PKCE, the callback caught as nothing serves it), Scalar's page, a workspace, an API key, a file upload
/// and the audit log, then the example plugin from the registry answering an event, and the registry's pages. Each page
/// is screenshotted into the test results. The browser ignores certificate errors where the README asks a person to
/// trust <c>.clippybot/tls/ca.pem</c>; the HTTP calls trust that CA only.
/// </summary>
/// <remarks>Run by <see cref="AppHostEndToEndTests"/> on its Garnet start (the README's first command on a fresh machine),
/// so the AppHost starts once for both.</remarks>
internal sealed class ReadmeTour(TestContext testContext)
{
    private const string DevClientRedirect = ClippyBot.AppHost.Infrastructure.IdentityConfiguration.DevClientRedirect;
    private IPage _page = null!;
    private int _shot;

    public async Task FollowAsync(DistributedApplication app, IDistributedApplicationTestingBuilder builder, CancellationToken ct)
    {
        var identityResource = builder.Resources.OfType<ProjectResource>().Single(r => r.Name == "identity");
#pragma warning disable CS0618 // Its replacement is marked for evaluation only; this reads one variable.
        var environment = await identityResource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Run);
#pragma warning restore CS0618
        using var ca = ClippyBot.Security.PrivateCaTrust.Load(environment["Tls__TrustedCaFile"]);
        var (identity, api, registry, mail) = (app.GetEndpoint("identity", "https"), app.GetEndpoint("api", "https"), app.GetEndpoint("registry", "https"), app.GetEndpoint("mail", "http"));

        await using var browser = await Browser.LaunchAsync();
        await using var context = await browser.Chromium.NewContextAsync(new BrowserNewContextOptions { IgnoreHTTPSErrors = true });
        _page = await context.NewPageAsync();

        // 1. Sign up on Identity's page.
        var email = OidcFlows.NewEmail();
        await _page.GotoAsync(new Uri(identity, "/account/register").ToString());
        await _page.GetByLabel("Email").FillAsync(email);
        await _page.GetByLabel("Password").FillAsync(OidcFlows.GoodPassword);
        await ShotAsync("sign-up");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();

        // 2. The verification mail in the inbox (smtp4dev), and its button.
        await _page.GotoAsync(mail.ToString());
        using var inbox = new HttpClient { BaseAddress = mail };
        var text = "";
        await Poll.UntilAsync(async () =>
        {
            var listing = await inbox.GetFromJsonAsync<JsonElement>(new Uri($"/api/messages?searchTerms={Uri.EscapeDataString(email)}", UriKind.Relative), ct);
            var id = listing.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).FirstOrDefault();
            text = id is null ? "" : await inbox.GetStringAsync(new Uri($"/api/messages/{id}/plaintext", UriKind.Relative), ct);
            return id is not null;
        }, TimeSpan.FromSeconds(30), "verification mail in the inbox", ct);
        await _page.ReloadAsync();
        await Assertions.Expect(_page.GetByText("Confirm your email address").First).ToBeVisibleAsync(new() { Timeout = 20_000 });
        await _page.WaitForLoadStateAsync(LoadState.NetworkIdle);
        await ShotAsync("inbox");
        await _page.GotoAsync(TestSmtp.LinkIn(new TestSmtp.Mail("", "", text, ""), "/account/confirm-email").ToString());
        await ShotAsync("confirm-address");
        // Only the account's own session confirms its address: the page asks to sign in, then comes back to the button.
        await _page.GetByRole(AriaRole.Button, new() { Name = "Confirm my address" }).ClickAsync();
        await _page.GetByLabel("Email").FillAsync(email);
        await _page.GetByLabel("Password").FillAsync(OidcFlows.GoodPassword);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Confirm my address" }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Status)).ToContainTextAsync("Your address is confirmed");
        await ShotAsync("address-confirmed");

        // 3. A token from the development client: the authorize address, the callback nothing serves (caught here), the code.
        var pkce = OidcFlows.Pkce.Create();
        var callback = _page.WaitForRequestAsync(r => r.Url.StartsWith(DevClientRedirect, StringComparison.Ordinal));
        try
        {
            await _page.GotoAsync(new Uri(identity, "/connect/authorize?client_id=clippybot-dev&response_type=code&scope=openid%20profile%20email%20offline_access%20api"
                + $"&redirect_uri={Uri.EscapeDataString(DevClientRedirect)}&state=tour&code_challenge={pkce.Challenge}&code_challenge_method=S256").ToString());
        }
        catch (PlaywrightException e) when (e.Message.Contains("ERR_CONNECTION_REFUSED", StringComparison.Ordinal))
        {
            // As the README says: nothing serves the callback address; the code is in it.
        }
        var code = System.Web.HttpUtility.ParseQueryString(new Uri((await callback).Url).Query)["code"] ?? "";
        await ShotAsync("callback-with-code");
        Assert.IsFalse(string.IsNullOrEmpty(code), "the code is in the callback address");
        using var identityClient = new HttpClient(TrustingHandler(ca)) { BaseAddress = identity };
        var (status, tokens) = await OidcFlows.RedeemCodeAsync(identityClient, code, pkce, ct, redirectUri: DevClientRedirect);
        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        using var person = new HttpClient(TrustingHandler(ca)) { BaseAddress = api, Timeout = TimeSpan.FromSeconds(30) };
        person.DefaultRequestHeaders.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
        StringAssert.Contains((await person.GetFromJsonAsync<JsonElement>(new Uri("/api/me", UriKind.Relative), ct)).GetProperty("scopes").ToString(), "api");

        // 4. Scalar's page, then a workspace, an API key, calls with it, a file upload and the audit log.
        var scalar = await _page.GotoAsync(new Uri(api, "/scalar/").ToString());
        Assert.AreEqual(200, scalar!.Status);
        await _page.WaitForLoadStateAsync(LoadState.NetworkIdle);
        await ShotAsync("scalar", fullPage: false);
        // Scalar's "Authorize": Identity's sign-in in a popup (this browser is signed in there already, so it comes straight
        // back), Scalar reads the code from it and redeems it at Identity's token endpoint; the token it holds works.
        // (Before the opener policies were relaxed for this flow, the popup was cut off from Scalar and stayed open.)
        var signInPopup = _page.Context.WaitForPageAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Authorize", Exact = true }).First.ClickAsync();
        var popup = await signInPopup;
        await Poll.UntilAsync(() => Task.FromResult(popup.IsClosed), TimeSpan.FromSeconds(30), "Scalar closes the sign-in popup once it has the code", ct);
        await Assertions.Expect(_page.GetByRole(AriaRole.Button, new() { Name = "Clear tokens" })).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await ShotAsync("scalar-authorized", fullPage: false);
        var scalarToken = await _page.EvaluateAsync<string>("() => [...document.querySelectorAll('input')].map(i => i.value).find(v => v.startsWith('eyJ')) ?? ''");
        using (var viaScalar = new HttpClient(TrustingHandler(ca)) { BaseAddress = api })
        {
            viaScalar.DefaultRequestHeaders.Authorization = new("Bearer", scalarToken);
            Assert.AreEqual(HttpStatusCode.OK, (await viaScalar.GetAsync(new Uri("/api/me", UriKind.Relative), ct)).StatusCode, "the token Scalar holds");
        }
        using var created = await person.PostAsJsonAsync(new Uri("/api/workspaces", UriKind.Relative), new { name = "Tour" }, ct);
        Assert.AreEqual(HttpStatusCode.Created, created.StatusCode, await created.Content.ReadAsStringAsync(ct));
        var workspace = (await created.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("id").GetString();
        using var keyCreated = await person.PostAsJsonAsync(new Uri($"/api/workspaces/{workspace}/api-keys", UriKind.Relative), new { name = "tour", scopes = new[] { "dataRead", "dataWrite" } }, ct);
        Assert.AreEqual(HttpStatusCode.Created, keyCreated.StatusCode, await keyCreated.Content.ReadAsStringAsync(ct));
        using var script = new HttpClient(TrustingHandler(ca)) { BaseAddress = api };
        script.DefaultRequestHeaders.Authorization = new("Bearer", (await keyCreated.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("key").GetString());
        Assert.AreEqual(HttpStatusCode.OK, (await script.GetAsync(new Uri($"/api/workspaces/{workspace}", UriKind.Relative), ct)).StatusCode);
        using var readme = new ByteArrayContent("# Tour\n"u8.ToArray());
        readme.Headers.ContentType = new("text/markdown");
        using var uploaded = await script.PostAsync(new Uri($"/api/workspaces/{workspace}/files?name=README.md", UriKind.Relative), readme, ct);
        Assert.AreEqual(HttpStatusCode.Created, uploaded.StatusCode, await uploaded.Content.ReadAsStringAsync(ct));
        var files = await script.GetFromJsonAsync<JsonElement>(new Uri($"/api/workspaces/{workspace}/files", UriKind.Relative), ct);
        Assert.AreEqual("README.md", files.EnumerateArray().Single().GetProperty("name").GetString());
        var audit = await person.GetStringAsync(new Uri($"/api/workspaces/{workspace}/audit", UriKind.Relative), ct);
        StringAssert.Contains(audit, "api_key");

        // 5. The example plugin from the registry: install counter (consenting to its permission) and send it an event.
        await Poll.UntilAsync(async () => (await person.GetFromJsonAsync<JsonElement>(new Uri("/api/plugins", UriKind.Relative), ct))
            .EnumerateArray().Any(p => p.GetProperty("id").GetString() == "dev.clippybot.counter"), TimeSpan.FromMinutes(4), "counter in the catalog", ct);
        using var installed = await person.PostAsJsonAsync(new Uri($"/api/workspaces/{workspace}/plugins", UriKind.Relative),
            new { pluginId = "dev.clippybot.counter", version = "1.0.0", acceptedPermissions = new[] { "storage:kv" } }, ct);
        Assert.AreEqual(HttpStatusCode.Created, installed.StatusCode, await installed.Content.ReadAsStringAsync(ct));
        using var delivered = await person.PostAsJsonAsync(new Uri($"/api/workspaces/{workspace}/plugins/dev.clippybot.counter/events", UriKind.Relative),
            new { @event = "on_message", payload = new { text = "hi" } }, ct);
        Assert.AreEqual("Completed", (await delivered.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("outcome").GetString());

        // The registry's pages: the home page, and publishing asks for a second factor this person has not set up.
        await _page.GotoAsync(registry.ToString());
        await ShotAsync("registry");
        await _page.GotoAsync(new Uri(registry, "/publish").ToString());
        await Assertions.Expect(_page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/denied"));
        await ShotAsync("registry-publish-needs-second-factor");
    }

    private static SocketsHttpHandler TrustingHandler(System.Security.Cryptography.X509Certificates.X509Certificate2 ca) => new()
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, errors) => ClippyBot.Security.PrivateCaTrust.IsTrusted(ca, certificate, errors) },
        AllowAutoRedirect = false,
    };

    private async Task ShotAsync(string name, bool fullPage = true)
    {
        var path = Path.Combine(testContext.TestResultsDirectory ?? Path.GetTempPath(), $"tour-{++_shot:00}-{name}.png");
        await _page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = fullPage });
        testContext.AddResultFile(path);
    }
}
