using System.Net;
using System.Text.RegularExpressions;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>Account-security steps as a browser performs them over HTTP: mail links, two-factor enrolment and sign-in.</summary>
public static partial class AccountFlows
{
    /// <summary>
    /// Registers a new account, signs <paramref name="browser"/> in to it (only the account's own session may confirm its
    /// address), and returns its address and the verification mail's link.
    /// </summary>
    public static async Task<(string Email, Uri VerifyLink)> RegisterWithMailAsync(HttpClient browser, CancellationToken ct)
    {
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, ct);
        using (var signIn = await LoginAsync(browser, email, GoodPassword, ct))
        {
            Assert.AreEqual(HttpStatusCode.Redirect, signIn.StatusCode);
        }
        var mail = await TestRig.Smtp.WaitForAsync(email, "Confirm your email address", ct);
        return (email, TestSmtp.LinkIn(mail, "/account/confirm-email"));
    }

    /// <summary>Opens an emailed link and submits its form (the POST is what spends the token).</summary>
    public static Task<HttpResponseMessage> SubmitLinkAsync(HttpClient browser, Uri link, IDictionary<string, string> fields, CancellationToken ct) =>
        PostFormAsync(browser, link.PathAndQuery, new Dictionary<string, string>(fields) { ["Token"] = QueryHelpers.ParseQuery(link.Query)["token"].ToString() }, ct);

    /// <summary>Turns two-factor on in <paramref name="browser"/> (signed in); returns the secret read from the page and the recovery codes.</summary>
    public static async Task<(byte[] Secret, IReadOnlyList<string> RecoveryCodes)> EnrolTwoFactorAsync(HttpClient browser, TimeProvider clock, CancellationToken ct)
    {
        using var start = await PostFormAsync(browser, "/account/manage/two-factor", new Dictionary<string, string>(), ct, handler: "Start");
        var page = await start.Content.ReadAsStringAsync(ct);
        var secretText = SecretOnPage().Match(page);
        Assert.IsTrue(secretText.Success, page);
        var secret = OtpNet.Base32Encoding.ToBytes(secretText.Groups[1].Value);
        using var confirm = await PostFormAsync(browser, "/account/manage/two-factor",
            new Dictionary<string, string> { ["Code"] = ClippyBot.Identity.Crypto.Totp.Compute(secret, clock.GetUtcNow()) }, ct, handler: "Confirm");
        var confirmed = await confirm.Content.ReadAsStringAsync(ct);
        Assert.AreEqual(HttpStatusCode.OK, confirm.StatusCode, confirmed);
        var codes = RecoveryCodeOnPage().Matches(confirmed).Select(m => m.Groups[1].Value).ToList();
        return (secret, codes);
    }

    /// <summary>Password step; returns the response (302 to the second-factor page when two-factor is on).</summary>
    public static async Task<HttpResponseMessage> PasswordStepAsync(HttpClient browser, string email, string password, CancellationToken ct, string? returnUrl = null) =>
        await LoginAsync(browser, email, password, ct, returnUrl);

    /// <summary>Second step with <paramref name="code"/> (TOTP or recovery code); returns the response (302 on success).</summary>
    public static Task<HttpResponseMessage> SecondFactorAsync(HttpClient browser, string code, CancellationToken ct, string? returnUrl = null) =>
        PostFormAsync(browser, "/account/login/two-factor" + (returnUrl is null ? "" : "?ReturnUrl=" + Uri.EscapeDataString(returnUrl)),
            new Dictionary<string, string> { ["Code"] = code, ["ReturnUrl"] = returnUrl ?? "" }, ct);

    /// <summary>A client signs <paramref name="email"/> in with password and <paramref name="code"/>; returns the redeemed tokens.</summary>
    public static async Task<System.Text.Json.JsonElement> SignInWithSecondFactorForTokensAsync(
        WebApplicationFactory<IdentityDataContext> identity, string email, string code, CancellationToken ct, string scope = UserScopes)
    {
        using var device = identity.Browser();
        var pkce = Pkce.Create();
        using var authorize = await device.GetAsync(new Uri(AuthorizeUrl(pkce, "s", scope: scope), UriKind.Relative), ct);
        var returnUrl = QueryHelpers.ParseQuery(authorize.Headers.Location!.Query)["ReturnUrl"].ToString();
        using var password = await PasswordStepAsync(device, email, GoodPassword, ct, returnUrl);
        Assert.AreEqual("/account/login/two-factor", password.Headers.Location!.OriginalString.Split('?')[0], "the password alone is not a session");
        using var second = await SecondFactorAsync(device, code, ct, returnUrl);
        Assert.AreEqual(HttpStatusCode.Redirect, second.StatusCode, await second.Content.ReadAsStringAsync(ct));
        using var callback = await device.GetAsync(second.Headers.Location, ct);
        var authCode = QueryHelpers.ParseQuery(callback.Headers.Location!.Query)["code"].ToString();
        var (status, tokens) = await RedeemCodeAsync(identity.CreateClient(), authCode, pkce, ct);
        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        return tokens;
    }

    /// <summary>
    /// Signs <paramref name="browser"/> in as <paramref name="email"/> with a second factor (enrolling TOTP first): a
    /// platform administrator's session must carry <c>amr: mfa</c>.
    /// </summary>
    public static async Task SignInWithSecondFactorAsync(HttpClient browser, string email, CancellationToken ct)
    {
        using (var password = await LoginAsync(browser, email, GoodPassword, ct))
        {
            Assert.AreEqual(HttpStatusCode.Redirect, password.StatusCode);
        }
        var (secret, _) = await EnrolTwoFactorAsync(browser, TimeProvider.System, ct);
        using (await PasswordStepAsync(browser, email, GoodPassword, ct))
        {
        }
        using var second = await SecondFactorAsync(browser, ClippyBot.Identity.Crypto.Totp.Compute(secret, DateTimeOffset.UtcNow.AddSeconds(30)), ct);
        Assert.AreEqual(HttpStatusCode.Redirect, second.StatusCode, await second.Content.ReadAsStringAsync(ct));
    }

    [GeneratedRegex("id=\"totp-secret\">([A-Z2-7]+)<")]
    private static partial Regex SecretOnPage();

    [GeneratedRegex("<li><code>([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})</code></li>")]
    private static partial Regex RecoveryCodeOnPage();
}
