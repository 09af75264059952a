using ClippyBot.Contracts;
using System.Net;
using System.Text.RegularExpressions;
using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;
using static ClippyBot.Tests.Identity.AccountFlows;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

[TestClass]
public sealed partial class SessionTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;
    private static readonly string AdminEmail = NewEmail();
    private static readonly string UnverifiedAdminEmail = NewEmail();

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) =>
        s_identity = await IdentityHost.StartAsync(context.CancellationToken, new Dictionary<string, string?>
        {
            ["Identity:Administrators:0"] = AdminEmail,
            ["Identity:Administrators:1"] = UnverifiedAdminEmail,
        });

    [ClassCleanup]
    public static async Task StopAsync() => await s_identity.DisposeAsync();

    [TestMethod]
    public async Task Each_login_is_a_listed_session_and_ending_one_kills_only_its_tokens()
    {
        var ct = TestContext.CancellationToken;
        var email = NewEmail();
        using var laptop = s_identity.Browser();
        laptop.DefaultRequestHeaders.UserAgent.ParseAdd("LaptopBrowser/1.0");
        await RegisterAsync(laptop, email, GoodPassword, ct);
        var laptopTokens = await LoginAndRedeemAsync(laptop, email, ct);
        using var phone = s_identity.Browser();
        phone.DefaultRequestHeaders.UserAgent.ParseAdd("PhoneBrowser/2.0");
        var phoneTokens = await LoginAndRedeemAsync(phone, email, ct);

        var sid = DecodeJwt(laptopTokens.Access).Payload.GetProperty("sid").GetString()!;
        Assert.AreEqual(sid, DecodeJwt(laptopTokens.Id).Payload.GetProperty("sid").GetString());

        var page = await laptop.GetStringAsync(new Uri("/account/manage/sessions", UriKind.Relative), ct);
        StringAssert.Contains(page, "LaptopBrowser/1.0");
        StringAssert.Contains(page, "PhoneBrowser/2.0");
        Assert.HasCount(2, SessionIds().Matches(page));

        using var end = await PostFormAsync(laptop, "/account/manage/sessions", new Dictionary<string, string> { ["sessionId"] = sid }, ct, handler: "End");
        Assert.AreEqual(HttpStatusCode.OK, end.StatusCode);

        var (ended, _) = await RefreshAsync(s_identity.CreateClient(), laptopTokens.Refresh, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, ended, "the ended session cannot refresh");
        Assert.IsFalse(await IsActiveAsync(s_identity.CreateClient(), laptopTokens.Access, ct));
        var (other, _) = await RefreshAsync(s_identity.CreateClient(), phoneTokens.Refresh, ct);
        Assert.AreEqual(HttpStatusCode.OK, other, "the other session lives on");

        await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
        Assert.IsTrue(await redis.GetDatabase().KeyExistsAsync(ClippyBot.Contracts.RevocationKeys.RevokedSession(sid)));
    }

    [TestMethod]
    public async Task Logging_out_from_all_devices_kills_every_session_and_the_browser_cookie()
    {
        var ct = TestContext.CancellationToken;
        var email = NewEmail();
        using var laptop = s_identity.Browser();
        await RegisterAsync(laptop, email, GoodPassword, ct);
        var first = await LoginAndRedeemAsync(laptop, email, ct);
        using var phone = s_identity.Browser();
        var second = await LoginAndRedeemAsync(phone, email, ct);

        using var endAll = await PostFormAsync(laptop, "/account/manage/sessions", new Dictionary<string, string>(), ct, handler: "EndAll");
        Assert.AreEqual(HttpStatusCode.Redirect, endAll.StatusCode);

        Assert.AreEqual(HttpStatusCode.BadRequest, (await RefreshAsync(s_identity.CreateClient(), first.Refresh, ct)).Status);
        Assert.AreEqual(HttpStatusCode.BadRequest, (await RefreshAsync(s_identity.CreateClient(), second.Refresh, ct)).Status);
        using var manage = await laptop.GetAsync(new Uri("/account/manage", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Redirect, manage.StatusCode, "this browser is signed out");
        StringAssert.StartsWith(manage.Headers.Location!.AbsolutePath, "/account/login");
    }

    [TestMethod]
    public async Task An_administrator_revokes_every_session_of_another_user_and_nobody_else_may()
    {
        var ct = TestContext.CancellationToken;
        using var admin = s_identity.Browser();
        await RegisterAsync(admin, AdminEmail, GoodPassword, ct);
        await ConfirmEmailAsync(AdminEmail);
        using var unverified = s_identity.Browser();
        await RegisterAsync(unverified, UnverifiedAdminEmail, GoodPassword, ct);
        var victimEmail = NewEmail();
        using var victim = s_identity.Browser();
        await RegisterAsync(victim, victimEmail, GoodPassword, ct);
        var victimTokens = await LoginAndRedeemAsync(victim, victimEmail, ct);

        // A listed address that is not verified proves nothing; an ordinary user is refused too.
        using (var login = await LoginAsync(unverified, UnverifiedAdminEmail, GoodPassword, ct)) { }
        using var refusedUnverified = await unverified.GetAsync(new Uri("/admin/users", UriKind.Relative), ct);
        Assert.AreNotEqual(HttpStatusCode.OK, refusedUnverified.StatusCode);
        using var refusedVictim = await victim.GetAsync(new Uri("/admin/users", UriKind.Relative), ct);
        Assert.AreNotEqual(HttpStatusCode.OK, refusedVictim.StatusCode);

        await SignInWithSecondFactorAsync(admin, AdminEmail, ct);
        var page = await admin.GetStringAsync(new Uri("/admin/users?email=" + Uri.EscapeDataString(victimEmail), UriKind.Relative), ct);
        StringAssert.Contains(page, "1 active session");
        var userId = Regex.Match(page, "name=\"userId\" value=\"([0-9a-f-]{36})\"").Groups[1].Value;

        using var revoke = await PostFormAsync(admin, "/admin/users?email=" + Uri.EscapeDataString(victimEmail),
            new Dictionary<string, string> { ["userId"] = userId }, ct, handler: "RevokeAll");
        Assert.AreEqual(HttpStatusCode.OK, revoke.StatusCode);

        Assert.AreEqual(HttpStatusCode.BadRequest, (await RefreshAsync(s_identity.CreateClient(), victimTokens.Refresh, ct)).Status);
        await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
        Assert.IsTrue(await redis.GetDatabase().KeyExistsAsync(ClippyBot.Contracts.RevocationKeys.RevokedBefore(userId)));

        // Containment: lock the account — even the right password no longer signs in, until unlocked.
        using var lockAccount = await PostFormAsync(admin, "/admin/users?email=" + Uri.EscapeDataString(victimEmail),
            new Dictionary<string, string> { ["userId"] = userId }, ct, handler: "Lock");
        Assert.AreEqual(HttpStatusCode.OK, lockAccount.StatusCode);
        using var lockedLogin = await LoginAsync(s_identity.Browser(), victimEmail, GoodPassword, ct);
        Assert.AreEqual(HttpStatusCode.OK, lockedLogin.StatusCode, "the login form is shown again, not a redirect");
        using var unlock = await PostFormAsync(admin, "/admin/users?email=" + Uri.EscapeDataString(victimEmail),
            new Dictionary<string, string> { ["userId"] = userId }, ct, handler: "Unlock");
        using var unlockedLogin = await LoginAsync(s_identity.Browser(), victimEmail, GoodPassword, ct);
        Assert.AreEqual(HttpStatusCode.Redirect, unlockedLogin.StatusCode);
    }

    private static Task ConfirmEmailAsync(string email) => s_identity.ConfirmEmailAsync(email);

    private static async Task<(string Access, string Id, string Refresh)> LoginAndRedeemAsync(HttpClient browser, string email, CancellationToken ct)
    {
        var pkce = Pkce.Create();
        var code = await SignInForCodeAsync(browser, email, GoodPassword, pkce, ct);
        var (status, tokens) = await RedeemCodeAsync(s_identity.CreateClient(), code, pkce, ct);
        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        return (tokens.GetProperty("access_token").GetString()!, tokens.GetProperty("id_token").GetString()!, tokens.GetProperty("refresh_token").GetString()!);
    }

    [GeneratedRegex("data-session=\"[0-9a-f-]{36}\"")]
    private static partial Regex SessionIds();
}
