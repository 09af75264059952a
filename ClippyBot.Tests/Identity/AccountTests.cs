using System.Net;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Crypto;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.DependencyInjection;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

[TestClass]
public sealed class AccountTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) =>
        s_identity = await IdentityHost.StartAsync(context.CancellationToken, new Dictionary<string, string?>
        {
            ["Lockout:MaxFailedAttempts"] = "5",
            ["Lockout:Duration"] = "00:15:00",
        });

    [ClassCleanup]
    public static async Task StopAsync() => await s_identity.DisposeAsync();

    [TestMethod]
    public async Task Unknown_account_wrong_password_and_locked_account_get_the_same_message()
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_identity.Browser();
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, ct);

        var unknown = await LoginPageTextAsync(browser, NewEmail(), GoodPassword, ct);
        var wrong = await LoginPageTextAsync(browser, email, "wrong password for sure", ct);
        StringAssert.Contains(unknown, HtmlEncoded(LoginGenericFailure));
        StringAssert.Contains(wrong, HtmlEncoded(LoginGenericFailure));

        // Four more failures lock the account (five in all)...
        for (var i = 0; i < 4; i++)
        {
            await LoginPageTextAsync(browser, email, "wrong password for sure", ct);
        }
        // ...after which even the right password gets the same generic answer and no session.
        using var locked = await LoginAsync(browser, email, GoodPassword, ct);
        Assert.AreEqual(HttpStatusCode.OK, locked.StatusCode);
        StringAssert.Contains(await locked.Content.ReadAsStringAsync(ct), HtmlEncoded(LoginGenericFailure));

        await using var scope = s_identity.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
        var user = await users.FindByEmailAsync(email);
        Assert.IsTrue(await users.IsLockedOutAsync(user!));
        var lockoutEnd = await users.GetLockoutEndDateAsync(user!);
        Assert.IsTrue(lockoutEnd > DateTimeOffset.UtcNow.AddMinutes(14) && lockoutEnd <= DateTimeOffset.UtcNow.AddMinutes(15.1), $"locked until {lockoutEnd}");
    }

    [TestMethod]
    [DataRow("short pass", "at least 12", DisplayName = "11 characters")]
    [DataRow("qwerty123456", "too common", DisplayName = "common password")]
    [DataRow("1QAZ2WSX3EDC", "too common", DisplayName = "common keyboard walk, upper case")]
    public async Task Registration_refuses_weak_passwords_with_a_clear_reason(string password, string reason)
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_identity.Browser();
        using var response = await PostFormAsync(browser, "/account/register", new Dictionary<string, string> { ["Email"] = NewEmail(), ["Password"] = password }, ct);

        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode);
        StringAssert.Contains(await response.Content.ReadAsStringAsync(ct), reason);
    }

    [TestMethod]
    public async Task Any_unicode_passphrase_of_12_characters_is_accepted_without_composition_rules()
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_identity.Browser();
        var email = NewEmail();
        const string password = "ünïcødé çafé🙂"; // 13 characters, no digit, no upper case
        await RegisterAsync(browser, email, password, ct);

        using var login = await LoginAsync(browser, email, password, ct);
        Assert.AreEqual(HttpStatusCode.Redirect, login.StatusCode);
    }

    [TestMethod]
    public async Task A_hash_with_weaker_parameters_verifies_and_is_upgraded_at_the_next_login()
    {
        var ct = TestContext.CancellationToken;
        using var browser = s_identity.Browser();
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, ct);
        await using (var scope = s_identity.Services.CreateAsyncScope())
        {
            var users = scope.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>();
            var user = (await users.FindByEmailAsync(email))!;
            user.PasswordHash = Argon2id.Hash(GoodPassword, new Argon2idParameters(MemoryKiB: 8_192, Iterations: 1));
            await users.UpdateAsync(user);
        }

        using var login = await LoginAsync(browser, email, GoodPassword, ct);

        Assert.AreEqual(HttpStatusCode.Redirect, login.StatusCode);
        await using var check = s_identity.Services.CreateAsyncScope();
        var stored = (await check.ServiceProvider.GetRequiredService<UserManager<ApplicationUser>>().FindByEmailAsync(email))!.PasswordHash!;
        StringAssert.StartsWith(stored, "$argon2id$v=19$m=19456,t=2,p=1$");
    }

    private const string LoginGenericFailure = ClippyBot.Identity.Pages.Account.LoginModel.GenericFailure;

    private static string HtmlEncoded(string text) => System.Text.Encodings.Web.HtmlEncoder.Default.Encode(text);

    private static async Task<string> LoginPageTextAsync(HttpClient browser, string email, string password, CancellationToken ct)
    {
        using var response = await LoginAsync(browser, email, password, ct);
        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode);
        return await response.Content.ReadAsStringAsync(ct);
    }
}
