using System.Net;
using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static ClippyBot.Tests.Identity.AccountFlows;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>Email verification, password reset and TOTP two-factor over HTTP, with mail delivered to the rig's real SMTP server.</summary>
[TestClass]
public sealed class AccountSecurityTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_identity = await IdentityHost.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_identity.DisposeAsync();

    [TestMethod]
    public async Task Registration_mails_a_verification_link_in_text_and_html_that_works_once()
    {
        using var browser = s_identity.Browser();
        var (email, link) = await RegisterWithMailAsync(browser, Ct);
        var mail = (await TestRig.Smtp.MessagesToAsync(email, Ct)).Single();
        StringAssert.Contains(mail.Html, System.Net.WebUtility.HtmlEncode(link.ToString()).Replace("&amp;", "&amp;", StringComparison.Ordinal), "the HTML part carries the same link");

        using var page = await browser.GetAsync(link.PathAndQuery, Ct);
        Assert.AreEqual(HttpStatusCode.OK, page.StatusCode);
        Assert.IsFalse(await IsVerifiedAsync(email), "opening the link (as a mail scanner would) does not spend it");

        using var confirmed = await SubmitLinkAsync(browser, link, new Dictionary<string, string>(), Ct);
        StringAssert.Contains(await confirmed.Content.ReadAsStringAsync(Ct), "Your address is confirmed");
        Assert.IsTrue(await IsVerifiedAsync(email));

        using var again = await browser.GetAsync(link.PathAndQuery, Ct);
        StringAssert.Contains(await again.Content.ReadAsStringAsync(Ct), "expired or was already used");
    }

    [TestMethod]
    public async Task An_unverified_account_signs_in_to_first_party_clients_but_not_to_third_parties_until_verified()
    {
        using var browser = s_identity.Browser();
        var (email, link) = await RegisterWithMailAsync(browser, Ct);
        using var login = await LoginAsync(browser, email, GoodPassword, Ct);

        using var firstParty = await browser.GetAsync(AuthorizeUrl(Pkce.Create(), "s1"), Ct);
        StringAssert.StartsWith(firstParty.Headers.Location!.ToString(), IdentityHost.WebRedirect);

        var thirdPartyUrl = AuthorizeUrl(Pkce.Create(), "s2", clientId: IdentityHost.ThirdPartyClient, scope: "openid api");
        using var refused = await browser.GetAsync(thirdPartyUrl, Ct);
        StringAssert.StartsWith(refused.Headers.Location!.OriginalString, "/account/confirm-email-required?ReturnUrl=");

        using var confirmed = await SubmitLinkAsync(browser, link, new Dictionary<string, string>(), Ct);
        // Verified now: the third-party app gets as far as asking for the person's consent.
        using var consentPage = await browser.GetAsync(thirdPartyUrl, Ct);
        using var allowed = await OidcFlows.AnswerConsentAsync(browser, consentPage, "allow", Ct);
        StringAssert.StartsWith(allowed.Headers.Location!.ToString(), IdentityHost.WebRedirect);
    }

    [TestMethod]
    public async Task Registering_an_existing_address_looks_the_same_and_warns_its_owner()
    {
        using var browser = s_identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, Ct);
        using var stranger = s_identity.Browser();
        using var response = await PostFormAsync(stranger, "/account/register", new Dictionary<string, string> { ["Email"] = email, ["Password"] = "another good passphrase 7" }, Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, response.StatusCode, "same answer as a new registration");
        await TestRig.Smtp.WaitForAsync(email, "Someone tried to register with your address", Ct);
    }

    [TestMethod]
    public async Task Forgot_password_answers_the_same_for_unknown_and_known_addresses_and_mails_only_accounts()
    {
        using var browser = s_identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, Ct);
        var nobody = NewEmail();

        var known = await ForgotAsync(email);
        var unknown = await ForgotAsync(nobody);

        Assert.AreEqual(Scrub(unknown), Scrub(known), "the page does not tell whether the account exists");
        await TestRig.Smtp.WaitForAsync(email, "Reset your ClippyBot password", Ct);
        Assert.IsEmpty(await TestRig.Smtp.MessagesToAsync(nobody, Ct));
    }

    [TestMethod]
    public async Task A_reset_link_sets_a_new_password_once_revokes_every_session_and_sends_a_notice()
    {
        using var browser = s_identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, Ct);
        var pkce = Pkce.Create();
        using var device = s_identity.Browser();
        var code = await SignInForCodeAsync(device, email, GoodPassword, pkce, Ct);
        var (_, tokens) = await RedeemCodeAsync(s_identity.CreateClient(), code, pkce, Ct);

        await ForgotAsync(email);
        var link = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(email, "Reset your ClippyBot password", Ct), "/account/reset-password");
        using var weak = await SubmitLinkAsync(s_identity.Browser(), link, new Dictionary<string, string> { ["NewPassword"] = "short" }, Ct);
        StringAssert.Contains(await weak.Content.ReadAsStringAsync(Ct), "at least 12", "a refused password does not spend the link");
        using var reset = await SubmitLinkAsync(s_identity.Browser(), link, new Dictionary<string, string> { ["NewPassword"] = "a brand new passphrase 2" }, Ct);
        StringAssert.Contains(await reset.Content.ReadAsStringAsync(Ct), "Your password was changed");

        StringAssert.Contains(await (await s_identity.Browser().GetAsync(link.PathAndQuery, Ct)).Content.ReadAsStringAsync(Ct), "expired or was already used", "the link works once");
        var (refresh, _) = await RefreshAsync(s_identity.CreateClient(), tokens.GetProperty("refresh_token").GetString()!, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, refresh, "the refresh token died with the reset");
        using var manage = await browser.GetAsync(new Uri("/account/manage", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, manage.StatusCode, "the old browser session is gone");
        using var oldPassword = await LoginAsync(s_identity.Browser(), email, GoodPassword, Ct);
        Assert.AreEqual(HttpStatusCode.OK, oldPassword.StatusCode, "the old password no longer signs in");
        using var newPassword = await LoginAsync(s_identity.Browser(), email, "a brand new passphrase 2", Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, newPassword.StatusCode);
        await TestRig.Smtp.WaitForAsync(email, "Your ClippyBot password was changed", Ct);
    }

    [TestMethod]
    public async Task A_newer_reset_link_or_a_password_change_kills_earlier_links()
    {
        using var browser = s_identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, Ct);
        await ForgotAsync(email);
        var first = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(email, "Reset your ClippyBot password", Ct), "/account/reset-password");
        await ExpireResetRateLimitAsync(email);
        await ForgotAsync(email);
        var second = TestSmtp.LinkIn(await TestRig.Smtp.WaitForAsync(email, "Reset your ClippyBot password", Ct, count: 2), "/account/reset-password");
        Assert.AreNotEqual(first, second);
        StringAssert.Contains(await (await browser.GetAsync(first.PathAndQuery, Ct)).Content.ReadAsStringAsync(Ct), "expired or was already used");

        using var login = await LoginAsync(browser, email, GoodPassword, Ct);
        using var changed = await PostFormAsync(browser, "/account/manage/password",
            new Dictionary<string, string> { ["CurrentPassword"] = GoodPassword, ["NewPassword"] = "changed passphrase here 9" }, Ct);
        Assert.AreEqual(HttpStatusCode.OK, changed.StatusCode);
        StringAssert.Contains(await (await browser.GetAsync(second.PathAndQuery, Ct)).Content.ReadAsStringAsync(Ct), "expired or was already used");
    }

    [TestMethod]
    public async Task Two_factor_sign_in_takes_each_code_once_and_puts_otp_and_mfa_in_the_tokens()
    {
        using var browser = s_identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        var (secret, _) = await EnrolTwoFactorAsync(browser, TimeProvider.System, Ct);
        await TestRig.Smtp.WaitForAsync(email, "Two-factor authentication is on", Ct);

        // The enrolment used the current step; the next step's code (inside the ±1 window) is fresh.
        var code = ClippyBot.Identity.Crypto.Totp.Compute(secret, DateTimeOffset.UtcNow.AddSeconds(30));
        var tokens = await SignInWithSecondFactorForTokensAsync(s_identity, email, code, Ct);
        var amr = DecodeJwt(tokens.GetProperty("access_token").GetString()!).Payload.GetProperty("amr").EnumerateArray().Select(e => e.GetString()).ToList();
        var idAmr = DecodeJwt(tokens.GetProperty("id_token").GetString()!).Payload.GetProperty("amr").EnumerateArray().Select(e => e.GetString()).ToList();
        CollectionAssert.IsSubsetOf(new[] { "pwd", "otp", "mfa" }, idAmr, "the ID token says it too");
        CollectionAssert.IsSubsetOf(new[] { "pwd", "otp", "mfa" }, amr);

        using var replayDevice = s_identity.Browser();
        using (await PasswordStepAsync(replayDevice, email, GoodPassword, Ct))
        {
        }
        using var replay = await SecondFactorAsync(replayDevice, code, Ct);
        Assert.AreEqual(HttpStatusCode.OK, replay.StatusCode, "a used code is refused");
        StringAssert.Contains(await replay.Content.ReadAsStringAsync(Ct), "already used");
    }

    [TestMethod]
    public async Task Recovery_codes_are_ten_distinct_80_bit_codes_each_usable_once_and_regeneration_kills_the_old_set()
    {
        using var browser = s_identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        var (secret, codes) = await EnrolTwoFactorAsync(browser, TimeProvider.System, Ct);
        Assert.HasCount(10, codes);
        Assert.HasCount(10, codes.Distinct());
        Assert.IsTrue(codes.All(c => c.Replace("-", "", StringComparison.Ordinal).Length * 5 >= 80), "16 base32 characters = 80 bits");

        using var device = s_identity.Browser();
        using (await PasswordStepAsync(device, email, GoodPassword, Ct))
        {
        }
        using var used = await SecondFactorAsync(device, codes[0].ToUpperInvariant(), Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, used.StatusCode, "recovery codes are case-insensitive");
        await TestRig.Smtp.WaitForAsync(email, "A recovery code was used to sign in", Ct);
        StringAssert.Contains(await (await device.GetAsync(new Uri("/account/manage/two-factor", UriKind.Relative), Ct)).Content.ReadAsStringAsync(Ct),
            "<strong id=\"recovery-remaining\">9</strong>");

        using var again = s_identity.Browser();
        using (await PasswordStepAsync(again, email, GoodPassword, Ct))
        {
        }
        using var reused = await SecondFactorAsync(again, codes[0], Ct);
        Assert.AreEqual(HttpStatusCode.OK, reused.StatusCode, "a recovery code works once");

        using var regenerated = await PostFormAsync(device, "/account/manage/two-factor",
            new Dictionary<string, string> { ["Code"] = ClippyBot.Identity.Crypto.Totp.Compute(secret, DateTimeOffset.UtcNow.AddSeconds(30)) }, Ct, handler: "Regenerate");
        Assert.AreEqual(HttpStatusCode.OK, regenerated.StatusCode, await regenerated.Content.ReadAsStringAsync(Ct));
        using var old = await SecondFactorAsync(again, codes[1], Ct);
        Assert.AreEqual(HttpStatusCode.OK, old.StatusCode, "the old set died with regeneration");
        await TestRig.Smtp.WaitForAsync(email, "New recovery codes were made", Ct);

        // Stored as keyed hashes and a sealed secret: nothing in the rows equals what the user saw.
        await using var scope = s_identity.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
        var user = await db.Users.SingleAsync(u => u.Email == email, Ct);
        Assert.IsNotNull(user.TotpSecret);
        Assert.IsFalse(Contains(user.TotpSecret, secret), "the TOTP secret is encrypted at rest");
        var hashes = await db.RecoveryCodes.Where(c => c.UserId == user.Id).Select(c => c.Hash).ToListAsync(Ct);
        Assert.HasCount(10, hashes);
    }

    [TestMethod]
    public async Task Wrong_second_factor_codes_count_toward_the_account_lockout()
    {
        using var browser = s_identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        var (secret, _) = await EnrolTwoFactorAsync(browser, TimeProvider.System, Ct);

        using var attacker = s_identity.Browser();
        using (await PasswordStepAsync(attacker, email, GoodPassword, Ct))
        {
        }
        for (var i = 0; i < 5; i++)
        {
            using var wrong = await SecondFactorAsync(attacker, "000000", Ct);
            Assert.AreEqual(HttpStatusCode.OK, wrong.StatusCode);
        }
        using var right = await SecondFactorAsync(attacker, ClippyBot.Identity.Crypto.Totp.Compute(secret, DateTimeOffset.UtcNow.AddSeconds(30)), Ct);
        Assert.AreEqual(HttpStatusCode.OK, right.StatusCode, "after 5 failures the account is locked, even for a right code");
        StringAssert.Contains(await (await browser.GetAsync(new Uri("/account/manage", UriKind.Relative), Ct)).Content.ReadAsStringAsync(Ct), "Wrong two-factor code entered");
    }

    [TestMethod]
    public async Task Turning_two_factor_off_needs_the_password_and_a_code_and_is_mailed()
    {
        using var browser = s_identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        var (_, codes) = await EnrolTwoFactorAsync(browser, TimeProvider.System, Ct);

        using var noPassword = await PostFormAsync(browser, "/account/manage/two-factor",
            new Dictionary<string, string> { ["Password"] = "not the password at all", ["Code"] = codes[0] }, Ct, handler: "Disable");
        Assert.AreEqual(HttpStatusCode.BadRequest, noPassword.StatusCode);
        using var noCode = await PostFormAsync(browser, "/account/manage/two-factor",
            new Dictionary<string, string> { ["Password"] = GoodPassword, ["Code"] = "123456" }, Ct, handler: "Disable");
        Assert.AreEqual(HttpStatusCode.BadRequest, noCode.StatusCode);
        using var off = await PostFormAsync(browser, "/account/manage/two-factor",
            new Dictionary<string, string> { ["Password"] = GoodPassword, ["Code"] = codes[1] }, Ct, handler: "Disable");
        Assert.AreEqual(HttpStatusCode.OK, off.StatusCode, await off.Content.ReadAsStringAsync(Ct));
        StringAssert.Contains(await off.Content.ReadAsStringAsync(Ct), "is <strong>off</strong>");
        await TestRig.Smtp.WaitForAsync(email, "Two-factor authentication is off", Ct);
        using var login = await LoginAsync(s_identity.Browser(), email, GoodPassword, Ct);
        Assert.AreEqual("/account/manage", login.Headers.Location!.OriginalString, "the password alone signs in again");
    }

    [TestMethod]
    public async Task After_turning_two_factor_on_the_user_can_end_every_other_session_and_stays_signed_in_here()
    {
        using var browser = s_identity.Browser();
        var (email, _) = await RegisterWithMailAsync(browser, Ct);
        using var otherDevice = s_identity.Browser();
        var pkce = Pkce.Create();
        var code = await SignInForCodeAsync(otherDevice, email, GoodPassword, pkce, Ct);
        var (_, otherTokens) = await RedeemCodeAsync(s_identity.CreateClient(), code, pkce, Ct);
        using (await LoginAsync(browser, email, GoodPassword, Ct))
        {
        }
        await EnrolTwoFactorAsync(browser, TimeProvider.System, Ct);

        using var ended = await PostFormAsync(browser, "/account/manage/two-factor", new Dictionary<string, string>(), Ct, handler: "EndOtherSessions");
        StringAssert.Contains(await ended.Content.ReadAsStringAsync(Ct), "Every other session was signed out");

        var (refresh, _) = await RefreshAsync(s_identity.CreateClient(), otherTokens.GetProperty("refresh_token").GetString()!, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, refresh, "the other device's login is over");
        using var otherPage = await otherDevice.GetAsync(new Uri("/account/manage", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.Redirect, otherPage.StatusCode, "the other browser is signed out");
        using var here = await browser.GetAsync(new Uri("/account/manage", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.OK, here.StatusCode, "this browser stays signed in");
        StringAssert.Contains(await here.Content.ReadAsStringAsync(Ct), "Other sessions signed out");
    }

    private async Task<string> ForgotAsync(string email)
    {
        using var response = await PostFormAsync(s_identity.Browser(), "/account/forgot-password", new Dictionary<string, string> { ["Email"] = email }, Ct);
        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync(Ct);
    }

    /// <summary>The page minus its per-request anti-forgery token.</summary>
    private static string Scrub(string html) => System.Text.RegularExpressions.Regex.Replace(html, "value=\"CfDJ8[^\"]+\"", "");

    private static async Task<bool> IsVerifiedAsync(string email)
    {
        await using var scope = s_identity.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<IdentityDataContext>().Users.Where(u => u.Email == email).Select(u => u.EmailConfirmed).SingleAsync();
    }

    /// <summary>Backdates the last reset link so the one-per-minute limit lets the test ask again at once.</summary>
    private static async Task ExpireResetRateLimitAsync(string email)
    {
        await using var scope = s_identity.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
        var userId = await db.Users.Where(u => u.Email == email).Select(u => u.Id).SingleAsync();
        await db.AccountTokens.Where(t => t.UserId == userId).ExecuteUpdateAsync(s => s.SetProperty(t => t.CreatedAt, t => t.CreatedAt.AddMinutes(-2)));
    }

    private static bool Contains(byte[] haystack, byte[] needle) =>
        Enumerable.Range(0, haystack.Length - needle.Length + 1).Any(i => haystack.AsSpan(i, needle.Length).SequenceEqual(needle));
}
