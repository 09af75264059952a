using System.Net;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static ClippyBot.Tests.Identity.AppFlows;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>
/// Changes to an app that cut something off: a leaked previous secret ended before its 24 h grace; a new redirect URI
/// asks everyone who allowed the app again; old refusals age out of the record. Real Identity, PostgreSQL, Redis, SMTP.
/// </summary>
[TestClass]
public sealed class AppChangeTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_identity = await IdentityHost.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_identity.DisposeAsync();

    [TestMethod]
    public async Task A_leaked_previous_secret_is_ended_at_once_instead_of_after_its_grace_period()
    {
        var (developer, _) = await NewDeveloperAsync(s_identity, Ct, twoFactor: true);
        using (developer)
        {
            var (_, id, old) = await CreateAppAsync(developer, Fields("Leaky", "server", ["client_credentials"], [], ["api"]), Ct);
            using var rotated = await PostPageAsync(developer, "/developers/apps/" + id, "Rotate", [], Ct);
            var fresh = SecretOnPage().Match(await rotated.Content.ReadAsStringAsync(Ct)).Groups[1].Value;
            Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(s_identity.CreateClient(), id!, old!, Ct, scope: "api")).Status, "within its 24 h");
            using var ended = await PostPageAsync(developer, "/developers/apps/" + id, "EndPreviousSecret", [], Ct);
            StringAssert.Contains(await ended.Content.ReadAsStringAsync(Ct), "no longer works");
            Assert.AreEqual(HttpStatusCode.Unauthorized, (await ClientCredentialsAsync(s_identity.CreateClient(), id!, old!, Ct, scope: "api")).Status);
            Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(s_identity.CreateClient(), id!, fresh, Ct, scope: "api")).Status);
        }
    }

    [TestMethod]
    public async Task A_new_redirect_URI_makes_the_app_ask_everyone_who_allowed_it_again()
    {
        var (developer, _) = await NewDeveloperAsync(s_identity, Ct);
        using (developer)
        {
            var (_, id, _) = await CreateAppAsync(developer, Fields("Moving", "spa", ["authorization_code"], [IdentityHost.WebRedirect], ["openid", "api"]), Ct);
            var (person, _) = await NewDeveloperAsync(s_identity, Ct);
            using (person)
            {
                using (var page = await person.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "m", scope: "openid api", clientId: id!), UriKind.Relative), Ct))
                using (var allowed = await AnswerConsentAsync(person, page, "allow", Ct))
                {
                    Assert.AreEqual(HttpStatusCode.Redirect, allowed.StatusCode);
                }
                // A name change keeps the consent; a new redirect URI does not.
                var renamed = Fields("Moving on", "spa", ["authorization_code"], [IdentityHost.WebRedirect], ["openid", "api"]);
                using (await PostPageAsync(developer, "/developers/apps/" + id, "Update", renamed, Ct))
                {
                }
                using (var silent = await person.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "m", scope: "openid api", clientId: id!), UriKind.Relative), Ct))
                {
                    Assert.AreEqual(HttpStatusCode.Redirect, silent.StatusCode, "still allowed");
                }
                // Marked first-party (no consent page at all): a new redirect URI takes the mark away too.
                await using (var scope = s_identity.Services.CreateAsyncScope())
                {
                    Assert.IsTrue(await scope.ServiceProvider.GetRequiredService<ClippyBot.Identity.Apps.AppRegistry>().SetFirstPartyAsync(Guid.NewGuid(), id!, true, Ct));
                }
                var moved = Fields("Moving on", "spa", ["authorization_code"], [IdentityHost.WebRedirect, "https://elsewhere.example/cb"], ["openid", "api"]);
                using (var updated = await PostPageAsync(developer, "/developers/apps/" + id, "Update", moved, Ct))
                {
                    StringAssert.Contains(await updated.Content.ReadAsStringAsync(Ct), "Saved");
                }
                using var asked = await person.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "m", "https://elsewhere.example/cb", scope: "openid api", clientId: id!), UriKind.Relative), Ct);
                Assert.AreEqual(HttpStatusCode.OK, asked.StatusCode, "asked again before any code goes to the new address");
                await using var check = s_identity.Services.CreateAsyncScope();
                Assert.IsFalse(await check.ServiceProvider.GetRequiredService<IdentityDataContext>().RegisteredApps.Where(a => a.ClientId == id).Select(a => a.FirstParty).SingleAsync(Ct));
            }
        }
    }

    [TestMethod]
    public async Task Refusals_older_than_the_retention_age_out_and_changes_stay()
    {
        await using var scope = s_identity.Services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
        var marker = "retention-" + Guid.NewGuid().ToString("N")[..12];
        db.AppAuditEntries.AddRange(
            new ClippyBot.Identity.Apps.AppAuditEntry { At = DateTimeOffset.UtcNow.AddDays(-91), ClientId = marker, Action = "app.register", Outcome = "refused" },
            new ClippyBot.Identity.Apps.AppAuditEntry { At = DateTimeOffset.UtcNow.AddDays(-1), ClientId = marker, Action = "app.register", Outcome = "refused" },
            new ClippyBot.Identity.Apps.AppAuditEntry { At = DateTimeOffset.UtcNow.AddDays(-400), ClientId = marker, Action = "app.created", Outcome = "success" });
        await db.SaveChangesAsync(Ct);
        await scope.ServiceProvider.GetRequiredService<ClippyBot.Identity.Apps.AppRegistry>().RemoveOldRefusalsAsync(Ct);
        var left = await db.AppAuditEntries.Where(e => e.ClientId == marker).Select(e => e.Outcome + "@" + (DateTimeOffset.UtcNow - e.At).Days).ToListAsync(Ct);
        CollectionAssert.AreEquivalent(new[] { "refused@1", "success@400" }, left);
    }
}
