using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using ClippyBot.Identity.Data;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.PluginHost;
using ClippyBot.Tests.Rig;
using Microsoft.Playwright;
using Totp = ClippyBot.Identity.Crypto.Totp;

namespace ClippyBot.Tests.Registry;

/// <summary>
/// In a real Chromium, Identity and the registry on real sockets: a publisher signs in to the registry's pages through
/// Identity with a second factor, becomes a publisher, proves a key, claims a namespace and submits a bundle; a reviewer
/// signs in likewise, opens it from the queue (risk summary, changes, checks) and approves it with a note the publisher
/// then reads. Attacks on the pages: a publisher opening the review queue, a form posted without its anti-forgery
/// token, the session cookie offered to the API. Every page is screenshotted into the test results.
/// </summary>
[TestClass]
public sealed class RegistryBrowserTests
{
    private IPage _page = null!;
    private int _shot;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task A_publisher_submits_a_signed_bundle_on_the_pages_and_a_reviewer_approves_it_from_the_queue_with_a_note_the_publisher_reads()
    {
        var ct = TestContext.CancellationToken;
        var (identityPort, registryPort) = (BrowserSignIn.FreePort(), BrowserSignIn.FreePort());
        var (identityOrigin, registryOrigin) = ($"http://localhost:{identityPort}", $"http://localhost:{registryPort}");
        var clientSecret = Convert.ToBase64String(RandomNumberGenerator.GetBytes(36));
        var reviewerEmail = OidcFlows.NewEmail();
        await using var identity = await IdentityHost.CreateAsync(ct, new Dictionary<string, string?>
        {
            ["Oidc:Clients:5:ClientId"] = "clippybot-registry",
            ["Oidc:Clients:5:ClientSecret"] = clientSecret,
            ["Oidc:Clients:5:GrantTypes:0"] = "authorization_code",
            ["Oidc:Clients:5:Scopes:0"] = "openid",
            ["Oidc:Clients:5:Scopes:1"] = "profile",
            ["Oidc:Clients:5:Scopes:2"] = "email",
            ["Oidc:Clients:5:Scopes:3"] = "registry",
            ["Oidc:Clients:5:RedirectUris:0"] = registryOrigin + "/signin-oidc",
            ["Oidc:Clients:5:FirstParty"] = "true",
            ["Identity:PluginReviewers:0"] = reviewerEmail,
        });
        identity.UseKestrel(identityPort);
        identity.StartServer();
        await using var registry = await RegistryRig.StartAsync(ct, settings: new Dictionary<string, string?>
        {
            ["Identity:MetadataAddress"] = identityOrigin + "/.well-known/openid-configuration",
            ["Registry:SignIn:ClientSecret"] = clientSecret,
        }, kestrelPort: registryPort);
        await using var browser = await Browser.LaunchAsync();

        // The publisher: signed in at Identity with TOTP, then at the registry through Identity (code + PKCE).
        await using var publisherContext = await browser.Chromium.NewContextAsync();
        _page = await publisherContext.NewPageAsync();
        await BrowserSignIn.SignUpWithSecondFactorAsync(_page, identity, identityOrigin, OidcFlows.NewEmail());
        await _page.GotoAsync(registryOrigin + "/publish");
        await Assertions.Expect(_page).ToHaveURLAsync(registryOrigin + "/publish");
        await ShotAsync("publisher-not-yet");
        await _page.GetByLabel("Publisher name").FillAsync("Acme " + Guid.NewGuid().ToString("N")[..6]);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Become a publisher" }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Status)).ToContainTextAsync("You are a publisher now");
        var publisherId = Guid.Parse(await _page.Locator("[data-publisher-id]").InnerTextAsync());

        // A key, proven as `clippybot-plugin prove` does it.
        var (privateKey, _) = PluginSigning.GenerateKey();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Add a key" }).ClickAsync();
        var challenge = await _page.Locator("[data-challenge]").InnerTextAsync();
        await ShotAsync("publisher-key-challenge");
        var (publicKey, signature) = PluginSigning.ProveKey(privateKey, publisherId, challenge);
        await _page.GetByLabel("Public key (base64)").FillAsync(publicKey);
        await _page.GetByLabel("Signature (base64)").FillAsync(signature);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Register key" }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Status)).ToContainTextAsync("Key registered");
        var space = "com.acme" + Guid.NewGuid().ToString("N")[..6];
        await _page.GetByLabel("Claim a namespace (reverse DNS, like com.example)").FillAsync(space);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Claim" }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Status)).ToContainTextAsync("Namespace claimed");

        // A bundle outside the namespace is refused with its checks on the page; the right one waits for review.
        var elsewhere = Path.Combine(TestContext.TestResultsDirectory ?? Path.GetTempPath(), "elsewhere.cbp");
        await File.WriteAllBytesAsync(elsewhere, PluginCatalogTests.Bundle("org.elsewhere.hello", "1.0.0", key: privateKey), ct);
        await _page.GetByLabel("Signed bundle (.cbp)").SetInputFilesAsync(elsewhere);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Submit", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Alert)).ToContainTextAsync("An automated check failed");
        await Assertions.Expect(_page.Locator("[data-check='namespace'] .failed")).ToHaveCountAsync(1);
        await ShotAsync("publisher-submission-refused");
        var bundleFile = Path.Combine(TestContext.TestResultsDirectory ?? Path.GetTempPath(), "hello.cbp");
        await File.WriteAllBytesAsync(bundleFile, PluginCatalogTests.Bundle(space + ".hello", "1.0.0", key: privateKey), ct);
        await _page.GetByLabel("Signed bundle (.cbp)").SetInputFilesAsync(bundleFile);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Submit", Exact = true }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Status)).ToContainTextAsync("waits for a reviewer");
        var submission = _page.Locator($"[data-submission='{space}.hello 1.0.0']");
        await Assertions.Expect(submission.Locator("[data-status]")).ToHaveTextAsync("InReview");
        await submission.Locator("summary").ClickAsync();
        await ShotAsync("publisher-submitted");

        // Attacks: the publisher is no reviewer; a form without its anti-forgery token; the session cookie on the API.
        var queue = await _page.GotoAsync(registryOrigin + "/review");
        Assert.AreEqual(403, queue!.Status);
        await Assertions.Expect(_page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/denied"));
        await ShotAsync("publisher-denied-review");
        var forged = await publisherContext.APIRequest.PostAsync(registryOrigin + "/publish?handler=Namespace", new() { Form = publisherContext.APIRequest.CreateFormData().Set("prefix", "com.forged") });
        Assert.AreEqual(400, forged.Status, "a form without its anti-forgery token is refused");
        // Odd bodies on the pages: a truncated multipart upload, a 1 MB field, an unknown handler — each a 4xx, never a 500.
        var truncated = await publisherContext.APIRequest.PostAsync(registryOrigin + "/publish?handler=Submit", new()
        {
            Headers = new Dictionary<string, string> { ["Content-Type"] = "multipart/form-data; boundary=xyz" },
            Data = "--xyz\r\nContent-Disposition: form-data; name=\"bundle\"; filename=\"a.cbp\"\r\n\r\nPK",
        });
        Assert.IsTrue(truncated.Status is >= 400 and < 500, $"truncated multipart: {truncated.Status}");
        var huge = await publisherContext.APIRequest.PostAsync(registryOrigin + "/publish?handler=Create", new() { Form = publisherContext.APIRequest.CreateFormData().Set("name", new string('a', 1_000_000)) });
        Assert.IsTrue(huge.Status is >= 400 and < 500, $"1 MB field: {huge.Status}");
        var unknown = await publisherContext.APIRequest.PostAsync(registryOrigin + "/publish?handler=Nope", new() { Form = publisherContext.APIRequest.CreateFormData().Set("x", "y") });
        Assert.IsTrue(unknown.Status is >= 400 and < 500, $"unknown handler: {unknown.Status}");
        var api = await publisherContext.APIRequest.GetAsync(registryOrigin + "/api/publishers/me");
        Assert.AreEqual(401, api.Status, "the API takes bearer tokens only, never the pages' cookie");

        // The reviewer, in another browser.
        await using var reviewerContext = await browser.Chromium.NewContextAsync();
        _page = await reviewerContext.NewPageAsync();
        await BrowserSignIn.SignUpWithSecondFactorAsync(_page, identity, identityOrigin, reviewerEmail);
        await _page.GotoAsync(registryOrigin + "/review");
        await Assertions.Expect(_page).ToHaveURLAsync(registryOrigin + "/review");
        await ShotAsync("reviewer-queue");
        await _page.GetByRole(AriaRole.Link, new() { Name = $"{space}.hello 1.0.0" }).ClickAsync();
        await Assertions.Expect(_page.Locator("[data-changes]")).ToHaveTextAsync("the first version of this plugin");
        await Assertions.Expect(_page.Locator("[data-risk]")).Not.ToBeEmptyAsync();
        await ShotAsync("reviewer-version");
        // A decision needs a note: the empty form is refused by the handler (the browser's own check bypassed).
        await _page.Locator("#note").EvaluateAsync("e => e.removeAttribute('required')");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Alert)).ToContainTextAsync("A note for the publisher");
        await _page.GetByLabel("Note for the publisher (required either way)").FillAsync("Looks fine: no host calls, no secrets.");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Assertions.Expect(_page.Locator("[data-decision]")).ToContainTextAsync("Status: Approved");
        await ShotAsync("reviewer-approved");

        // The publisher sees the outcome and the note; the version is in the signed targets.
        _page = publisherContext.Pages[0];
        await _page.GotoAsync(registryOrigin + "/publish");
        await Assertions.Expect(submission.Locator("[data-status]")).ToHaveTextAsync("Approved");
        await Assertions.Expect(submission.Locator("[data-note]")).ToHaveTextAsync("Looks fine: no host calls, no secrets.");
        await ShotAsync("publisher-approved");
        // Sign out: a form with its anti-forgery token, back on the registry's home page (it was a 400 before).
        await _page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();
        await Assertions.Expect(_page).ToHaveURLAsync(registryOrigin + "/");
        await Assertions.Expect(_page.GetByRole(AriaRole.Button, new() { Name = "Sign out" })).ToHaveCountAsync(0);
        using var http = new HttpClient { BaseAddress = new Uri(registryOrigin) };
        var listed = await registry.Client(new ClippyBot.Tuf.InMemoryTrustStore(), http).RefreshAsync(ct);
        Assert.IsTrue(listed.Targets.Targets.Keys.Any(k => k.StartsWith(space + ".hello", StringComparison.Ordinal)), "approved on the page: listed in targets");
    }

    /// <summary>A verified account with TOTP, signed in on Identity's pages with a code (so the session says mfa).</summary>
    private async Task ShotAsync(string name)
    {
        var path = Path.Combine(TestContext.TestResultsDirectory ?? Path.GetTempPath(), $"registry-{++_shot:00}-{name}.png");
        await _page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.AddResultFile(path);
    }
}
