using System.Net;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Npgsql;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

[TestClass]
public sealed class DataProtectionTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task A_sign_in_cookie_from_one_replica_opens_on_another_and_the_stored_key_ring_is_sealed()
    {
        var ct = TestContext.CancellationToken;
        await using var first = await IdentityHost.StartAsync(ct);
        await using var second = new ServiceFactory<IdentityDataContext>(first.Settings);
        second.ClientOptions.BaseAddress = new Uri("https://localhost");
        second.ClientOptions.AllowAutoRedirect = false;

        using var browser = first.Browser();
        var email = NewEmail();
        await RegisterAsync(browser, email, GoodPassword, ct);
        using var login = await LoginAsync(browser, email, GoodPassword, ct);
        Assert.AreEqual(HttpStatusCode.Redirect, login.StatusCode);
        var cookie = login.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith(AccountsExtensions.CookieName + "=", StringComparison.Ordinal)).Split(';')[0];

        using var request = new HttpRequestMessage(HttpMethod.Get, "/account/manage");
        request.Headers.Add("Cookie", cookie);
        using var onSecond = await second.CreateClient().SendAsync(request, ct);
        Assert.AreEqual(HttpStatusCode.OK, onSecond.StatusCode, "the other replica reads the cookie");
        StringAssert.Contains(await onSecond.Content.ReadAsStringAsync(ct), email);

        await using var connection = new NpgsqlConnection(first.Settings["ConnectionStrings:identitydb"]);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("SELECT string_agg(\"Xml\", '') FROM \"DataProtectionKeys\"", connection);
        var xml = (string)(await command.ExecuteScalarAsync(ct))!;
        StringAssert.Contains(xml, "<sealedKey");
        Assert.IsFalse(xml.Contains("<masterKey", StringComparison.Ordinal), "no plaintext key material in the database");
    }
}
