using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Totp = ClippyBot.Identity.Crypto.Totp;

namespace ClippyBot.Tests.Identity;

/// <summary>
/// The account-security journey in a real Chromium against Identity on a real socket, with mail read from the rig's SMTP
/// server. Every page is screenshotted into the test results; labels, errors tied to fields and initial focus are checked.
/// </summary>
[TestClass]
public sealed class AccountBrowserTests
{
    private const string Password = "correct horse battery staple 42";
    private const string NewPassword = "a completely new passphrase 8";

    private IPage _page = null!;
    private int _shot;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(240_000, CooperativeCancellation = true)]
    public async Task A_person_registers_verifies_enrols_TOTP_signs_in_with_codes_and_resets_the_password()
    {
        var ct = TestContext.CancellationToken;
        var clock = new ShiftedClock();
        await using var identity = await IdentityHost.CreateAsync(ct, configureServices: s => s.AddSingleton<TimeProvider>(clock));
        identity.UseKestrel(0);
        identity.StartServer();
        var port = new Uri(identity.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        var origin = $"http://localhost:{port}";
        using (var probe = new HttpClient { BaseAddress = new Uri(origin) })
        {
            await Poll.UntilAsync(async () => (await probe.GetAsync(new Uri("/health", UriKind.Relative), ct)).IsSuccessStatusCode, TimeSpan.FromSeconds(60), "identity healthy", ct);
        }

        await using var browser = await Browser.LaunchAsync();
        await using var context = await browser.Chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = origin });
        _page = await context.NewPageAsync();
        var email = OidcFlows.NewEmail();

        // Register: the form is usable by label, and the first field has focus.
        await _page.GotoAsync("/account/register");
        await AssertFocusedAsync("Email");
        await _page.GetByLabel("Email").FillAsync(email);
        await _page.GetByLabel("Password").FillAsync("short");
        await ShotAsync("register-error");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        var passwordError = _page.Locator("#password-error");
        StringAssert.Contains(await passwordError.InnerTextAsync(), "12", "the policy error sits next to the password field");
        await ShotAsync("register-refused");
        await _page.GetByLabel("Password").FillAsync(Password);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Create account" }).ClickAsync();
        await ShotAsync("registered");

        // Verify the address through the inbox.
        var verify = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(email, "Confirm your email address", ct), "/account/confirm-email");
        await _page.GotoAsync(verify.PathAndQuery);
        await ShotAsync("confirm-email");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Confirm my address" }).ClickAsync();
        // Only the account's own session confirms its address: the page asks to sign in, then comes back to the button.
        await Assertions.Expect(_page.Locator("p.notice")).ToContainTextAsync("Sign in to the account this address belongs to");
        await ShotAsync("confirm-email-sign-in");
        await _page.GetByLabel("Email").FillAsync(email);
        await _page.GetByLabel("Password").FillAsync(Password);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await _page.GetByRole(AriaRole.Button, new() { Name = "Confirm my address" }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Status)).ToContainTextAsync("Your address is confirmed");
        await ShotAsync("email-confirmed");

        // Signed in: enrol TOTP, reading the key from the page as a person would type it.
        await _page.GotoAsync("/account/manage/two-factor");
        await ShotAsync("two-factor-off");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Set up two-factor authentication" }).ClickAsync();
        var secret = OtpNet.Base32Encoding.ToBytes(await _page.Locator("#totp-secret").InnerTextAsync());
        await Assertions.Expect(_page.GetByRole(AriaRole.Img)).ToBeVisibleAsync();
        await ShotAsync("two-factor-enrol");
        await _page.GetByLabel("Code from your authenticator app").FillAsync(Totp.Compute(secret, clock.GetUtcNow()));
        await _page.GetByRole(AriaRole.Button, new() { Name = "Turn on" }).ClickAsync();
        var recoveryCodes = await _page.Locator("#recovery-codes code").AllInnerTextsAsync();
        Assert.HasCount(10, recoveryCodes);
        await ShotAsync("two-factor-recovery-codes");

        // Sign out, then in with a TOTP code; the same code again is refused.
        await SignOutAsync();
        await SignInWithPasswordAsync(email, Password, expectSecondFactor: true);
        await AssertFocusedAsync("Code");
        var code = Totp.Compute(secret, clock.GetUtcNow().AddSeconds(30));
        await SecondFactorAsync(code);
        await Assertions.Expect(_page).ToHaveURLAsync(origin + "/account/manage");
        await ShotAsync("signed-in-with-totp");
        await SignOutAsync();
        await SignInWithPasswordAsync(email, Password, expectSecondFactor: true);
        await SecondFactorAsync(code);
        await AssertFieldErrorAsync("already used");
        await ShotAsync("totp-replay-refused");

        // A recovery code works once.
        await SecondFactorAsync(recoveryCodes[0]);
        await Assertions.Expect(_page).ToHaveURLAsync(origin + "/account/manage");
        await ShotAsync("signed-in-with-recovery-code");
        await SignOutAsync();
        await SignInWithPasswordAsync(email, Password, expectSecondFactor: true);
        await SecondFactorAsync(recoveryCodes[0]);
        await AssertFieldErrorAsync("already used");
        await ShotAsync("recovery-code-reuse-refused");

        // A second browser keeps a session; then the password is reset through the mailed link.
        await using var oldDevice = await browser.Chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = origin });
        var oldPage = await oldDevice.NewPageAsync();
        (_page, oldPage) = (oldPage, _page);
        await SignInWithPasswordAsync(email, Password, expectSecondFactor: true);
        await SecondFactorAsync(recoveryCodes[1]);
        await Assertions.Expect(_page).ToHaveURLAsync(origin + "/account/manage");
        (_page, oldPage) = (oldPage, _page);

        await _page.GotoAsync("/account/login");
        await _page.GetByRole(AriaRole.Link, new() { Name = "Forgot your password?" }).ClickAsync();
        await ShotAsync("forgot-password");
        await _page.GetByLabel("Email").FillAsync(email);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Email me a link" }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Status)).ToContainTextAsync("If an account uses that address");
        await ShotAsync("forgot-password-sent");
        var reset = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(email, "Reset your ClippyBot password", ct), "/account/reset-password");
        await _page.GotoAsync(reset.PathAndQuery);
        await ShotAsync("reset-password");
        await _page.GetByLabel("New password").FillAsync(NewPassword);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Change password" }).ClickAsync();
        await Assertions.Expect(_page.GetByRole(AriaRole.Status)).ToContainTextAsync("Your password was changed");
        await ShotAsync("password-reset-done");

        await oldPage.GotoAsync("/account/manage");
        StringAssert.StartsWith(new Uri(oldPage.Url).AbsolutePath, "/account/login", "the old session is gone");
        await TestRig.Smtp.WaitForAsync(email, "Your ClippyBot password was changed", ct);

        // An expired link: a new one is asked for, then the clock moves past 24 hours.
        clock.Advance(TimeSpan.FromMinutes(2));
        await _page.GotoAsync("/account/forgot-password");
        await _page.GetByLabel("Email").FillAsync(email);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Email me a link" }).ClickAsync();
        var late = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(email, "Reset your ClippyBot password", ct, count: 2), "/account/reset-password");
        clock.Advance(TimeSpan.FromHours(24) + TimeSpan.FromMinutes(1));
        await _page.GotoAsync(late.PathAndQuery);
        await Assertions.Expect(_page.GetByRole(AriaRole.Alert)).ToContainTextAsync("expired or was already used");
        await ShotAsync("reset-link-expired");
    }

    private async Task SignInWithPasswordAsync(string email, string password, bool expectSecondFactor = false)
    {
        await _page.GotoAsync("/account/login");
        await AssertFocusedAsync("Email");
        await _page.GetByLabel("Email").FillAsync(email);
        await _page.GetByLabel("Password").FillAsync(password);
        await ShotAsync("sign-in");
        await _page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        if (expectSecondFactor)
        {
            await Assertions.Expect(_page.GetByLabel("Code from your authenticator app, or one of your recovery codes")).ToBeVisibleAsync();
            await ShotAsync("second-factor");
        }
    }

    private async Task SecondFactorAsync(string code)
    {
        await _page.GetByLabel("Code from your authenticator app, or one of your recovery codes").FillAsync(code);
        await _page.GetByRole(AriaRole.Button, new() { Name = "Verify" }).ClickAsync();
    }

    private async Task SignOutAsync()
    {
        await _page.GotoAsync("/account/manage");
        await _page.GetByRole(AriaRole.Link, new() { Name = "Sign out" }).ClickAsync();
        var button = _page.GetByRole(AriaRole.Button, new() { Name = "Sign out" });
        if (await button.CountAsync() > 0)
        {
            await ShotAsync("sign-out");
            await button.ClickAsync();
        }
    }

    /// <summary>The error is announced (role alert) and tied to the field through aria-describedby.</summary>
    private async Task AssertFieldErrorAsync(string text)
    {
        var error = _page.GetByRole(AriaRole.Alert);
        await Assertions.Expect(error).ToContainTextAsync(text);
        var describedBy = await _page.Locator("#Code").GetAttributeAsync("aria-describedby") ?? "";
        CollectionAssert.Contains(describedBy.Split(' '), await error.GetAttributeAsync("id"));
    }

    /// <summary>The page puts keyboard focus on its first field (autofocus applies just after load; Expect waits for it).</summary>
    private Task AssertFocusedAsync(string id) => Assertions.Expect(_page.Locator("#" + id)).ToBeFocusedAsync();

    private async Task ShotAsync(string name)
    {
        var path = Path.Combine(TestContext.TestResultsDirectory ?? Path.GetTempPath(), $"account-{++_shot:00}-{name}.png");
        await _page.ScreenshotAsync(new PageScreenshotOptions { Path = path, FullPage = true });
        TestContext.AddResultFile(path);
    }
}
