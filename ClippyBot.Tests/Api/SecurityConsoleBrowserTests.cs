using ClippyBot.Api.Data;
using ClippyBot.Api.Detection;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace ClippyBot.Tests.Api;

/// <summary>
/// #23's pages in a real Chromium, Identity and the Api on real sockets: an administrator signs in to the security console
/// through Identity with a second factor, sees the alerts, opens an incident from one, moves it forward, locks an account from
/// the incident, starts the 72-hour clock, is refused closing without a review, writes it and closes. Attacks on the page:
/// an alert whose subject is markup (rendered as text), the console without a token. Every page is screenshotted.
/// </summary>
[TestClass]
public sealed class SecurityConsoleBrowserTests
{
    private IPage _page = null!;
    private int _shot;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task An_administrator_opens_an_incident_from_an_alert_contains_it_and_closes_it_with_a_review_on_the_console()
    {
        var ct = TestContext.CancellationToken;
        var (identityPort, apiPort) = (BrowserSignIn.FreePort(), BrowserSignIn.FreePort());
        var (identityOrigin, apiOrigin) = ($"http://localhost:{identityPort}", $"http://localhost:{apiPort}");
        var adminEmail = OidcFlows.NewEmail();
        var signals = "clippybot:signals:" + Guid.NewGuid().ToString("N") + ":";
        await using var identity = await IdentityHost.CreateAsync(ct, new Dictionary<string, string?>
        {
            ["Identity:Administrators:0"] = adminEmail,
            ["Signals:KeyPrefix"] = signals,
            ["Oidc:Clients:6:ClientId"] = "clippybot-console",
            ["Oidc:Clients:6:GrantTypes:0"] = "authorization_code",
            ["Oidc:Clients:6:Scopes:0"] = "openid",
            ["Oidc:Clients:6:Scopes:1"] = "api",
            ["Oidc:Clients:6:RedirectUris:0"] = apiOrigin + "/console/",
            ["Oidc:Clients:6:FirstParty"] = "true",
        });
        identity.UseKestrel(identityPort);
        identity.StartServer();
        await using var api = await ApiHost.StartAsync(identity, TestRig.Redis.ConnectionString, ct, settings: new Dictionary<string, string?>
        {
            ["SecurityConsole:Authority"] = identityOrigin,
            ["SecurityConsole:ClientId"] = "clippybot-console",
            ["Signals:KeyPrefix"] = signals,
            ["Detection:Rules:mass-key-revocations:Threshold"] = "1",
            ["RateLimits:Sensitive:PermitLimit"] = "1000",
            ["Incidents:CheckInterval"] = "00:00:01",
        }, identityOrigin: identityOrigin, kestrelPort: apiPort);

        await using var browser = await Browser.LaunchAsync();
        // A wave of key revocations, and an alert whose subject is markup (an attacker's choice of text).
        var owner = await PersonAsync(browser.Chromium, identity, identityOrigin, apiOrigin, ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Acme", ct);
        for (var i = 0; i < 2; i++)
        {
            var (keyId, _) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], null, ct);
            (await owner.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/api-keys/{keyId}", UriKind.Relative), ct)).Dispose();
        }
        await api.Services.GetRequiredService<AlertEvaluator>().EvaluateAsync(ct);
        await using (var scope = api.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
            db.SecurityAlerts.Add(new SecurityAlert
            {
                Id = Guid.CreateVersion7(), Rule = "rate-limit-refusals", Severity = "low", Subject = "<img src=x onerror=\"window.pwned=1\">",
                Description = "markup as a subject", FirstSeen = DateTimeOffset.UtcNow, LastSeen = DateTimeOffset.UtcNow, Count = 300,
            });
            await db.SaveChangesAsync(ct);
        }

        await using var context = await browser.Chromium.NewContextAsync();
        _page = await context.NewPageAsync();
        var scriptErrors = new List<string>();
        _page.PageError += (_, error) => scriptErrors.Add(error);

        // Without signing in, the console shows only its sign-in button, and its own policy.
        var first = await _page.GotoAsync(apiOrigin + "/console/");
        StringAssert.Contains(first!.Headers["content-security-policy"], "script-src 'self'");
        await Assertions.Expect(_page.GetByRole(AriaRole.Button, new() { Name = "Sign in with ClippyBot" })).ToBeVisibleAsync();
        await ShotAsync("console-signed-out");

        await BrowserSignIn.SignUpWithSecondFactorAsync(_page, identity, identityOrigin, adminEmail);
        await _page.GotoAsync(apiOrigin + "/console/");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Sign in with ClippyBot" }).ClickAsync();
        var revocations = _page.Locator("tr", new() { HasText = "mass-key-revocations" });
        await Assertions.Expect(revocations).ToHaveCountAsync(1);
        await Assertions.Expect(_page.Locator("tr", new() { HasText = "<img src=x" })).ToHaveCountAsync(1);
        Assert.IsTrue(await _page.EvaluateAsync<bool>("() => window.pwned === undefined"), "markup in an alert is shown as text, never run");
        await ShotAsync("console-alerts");

        // An incident from the alert.
        await revocations.GetByRole(AriaRole.Checkbox).CheckAsync();
        await _page.GetByLabel("Title").FillAsync("API keys revoked in bulk");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Open incident" }).ClickAsync();
        await Assertions.Expect(_page.Locator("[data-incident-status]")).ToHaveTextAsync("detection");
        await Assertions.Expect(_page.Locator("ol.timeline")).ToContainTextAsync("mass-key-revocations");
        await ShotAsync("console-incident-opened");

        await _page.GetByRole(AriaRole.Button, new() { Name = "containment", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.Locator("[data-incident-status]")).ToHaveTextAsync("containment");
        await _page.GetByLabel("Containment action").SelectOptionAsync("lock-account");
        await _page.GetByLabel("Account id", new() { Exact = true }).FillAsync(owner.Subject);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Take action" }).ClickAsync();
        await Assertions.Expect(_page.Locator("ol.timeline")).ToContainTextAsync($"account {owner.Subject} locked");
        Assert.AreEqual(System.Net.HttpStatusCode.Unauthorized, (await owner.Client.GetAsync(new Uri("/api/me", UriKind.Relative), ct)).StatusCode, "locked from the page, for real");
        await _page.GetByLabel("Which personal data").FillAsync("workspace names of Acme");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Start the 72-hour clock" }).ClickAsync();
        await Assertions.Expect(_page.Locator(".clock")).ToContainTextAsync("notify by");
        await ShotAsync("console-incident-contained");

        // The affected person is told, and the page shows the mail was delivered.
        await _page.GetByLabel("Account ids (one per line)").FillAsync(owner.Subject);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Add", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.Locator("ol.timeline")).ToContainTextAsync("1 people named as affected");
        await _page.GetByLabel("What happened").FillAsync("Your password was used by someone else to revoke API keys.");
        await _page.GetByLabel("Which data").FillAsync("The names of your workspace's API keys.");
        await _page.GetByLabel("What we did").FillAsync("We locked the account and revoked every session.");
        await _page.GetByLabel("What they should do").FillAsync("Reset your password and turn on two-factor sign-in.");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Send notifications" }).ClickAsync();
        await Assertions.Expect(_page.Locator("ol.timeline")).ToContainTextAsync("Notified 1 affected people");
        await TestRig.Smtp.WaitForAsync(owner.Email, "Important: a security incident affected your ClippyBot data", ct);
        await Poll.UntilAsync(async () =>
        {
            await _page.GetByRole(AriaRole.Link, new() { Name = "Incidents" }).ClickAsync();
            await _page.GetByRole(AriaRole.Link, new() { Name = "API keys revoked in bulk" }).ClickAsync();
            return !(await _page.Locator("table tr", new() { HasText = owner.Subject }).InnerTextAsync()).Contains('—', StringComparison.Ordinal);
        }, TimeSpan.FromSeconds(30), "the notification is recorded as delivered", ct);
        await ShotAsync("console-notified");

        // Closing needs the review: refused, then done.
        await _page.GetByRole(AriaRole.Button, new() { Name = "closed", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Alert)).ToContainTextAsync("post-incident review");
        await ShotAsync("console-close-refused");
        await _page.GetByLabel("Review (required to close)").FillAsync("A leaked owner password; the account is locked and its keys revoked. Change: breached-password checks.");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Save review" }).ClickAsync();
        await Assertions.Expect(_page.Locator("ol.timeline")).ToContainTextAsync("post-incident review was written");
        await _page.GetByRole(AriaRole.Button, new() { Name = "closed", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.Locator("[data-incident-status]")).ToHaveTextAsync("closed");
        await ShotAsync("console-incident-closed");

        await _page.GetByRole(AriaRole.Link, new() { Name = "Incidents" }).ClickAsync();
        await Assertions.Expect(_page.Locator("tr", new() { HasText = "API keys revoked in bulk" })).ToContainTextAsync("closed");
        await ShotAsync("console-incidents");

        // The page's data needs the token: the same endpoint without one is refused.
        var bare = await context.APIRequest.GetAsync(apiOrigin + "/api/admin/incidents");
        Assert.AreEqual(401, bare.Status);
        Assert.IsEmpty(scriptErrors, string.Join('\n', scriptErrors));
    }

    /// <summary>A person signed up on Identity's pages, with an Api client holding their access token (the code caught at the redirect).</summary>
    private static async Task<(HttpClient Client, string Subject, string Email)> PersonAsync(IBrowser chromium, ServiceFactory<ClippyBot.Identity.Data.IdentityDataContext> identity,
        string identityOrigin, string apiOrigin, CancellationToken ct)
    {
        await using var context = await chromium.NewContextAsync();
        await context.RouteAsync(IdentityHost.WebRedirect + "**", route => route.FulfillAsync(new() { Body = "signed in" }));
        var page = await context.NewPageAsync();
        var email = OidcFlows.NewEmail();
        await page.GotoAsync(identityOrigin + "/account/register");
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(OidcFlows.GoodPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await identity.ConfirmEmailAsync(email);
        var pkce = OidcFlows.Pkce.Create();
        await page.GotoAsync(identityOrigin + OidcFlows.AuthorizeUrl(pkce, "person"));
        await page.GetByLabel("Email").FillAsync(email);
        await page.GetByLabel("Password").FillAsync(OidcFlows.GoodPassword);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync(IdentityHost.WebRedirect + "**");
        var code = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(new Uri(page.Url).Query)["code"].ToString();
        using var tokens = new HttpClient { BaseAddress = new Uri(identityOrigin) };
        var (status, body) = await OidcFlows.RedeemCodeAsync(tokens, code, pkce, ct);
        Assert.AreEqual(System.Net.HttpStatusCode.OK, status, body.ToString());
        var access = body.GetProperty("access_token").GetString()!;
        var client = new HttpClient { BaseAddress = new Uri(apiOrigin) };
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", access);
        return (client, OidcFlows.DecodeJwt(access).Payload.GetProperty("sub").GetString()!, email);
    }

    private async Task ShotAsync(string name)
    {
        var path = Path.Combine(TestContext.TestResultsDirectory ?? Path.GetTempPath(), $"console-{++_shot:00}-{name}.png");
        await _page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.AddResultFile(path);
    }
}
