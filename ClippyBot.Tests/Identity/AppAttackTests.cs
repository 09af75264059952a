using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using static ClippyBot.Tests.Identity.AppFlows;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>
/// The app endpoints and forms as an attacker tries them: a 1 MB body (with and without a length), wrong-typed JSON, odd
/// spellings of the path, a 1 MB form field, a burst of "Allow" posts, ids that are not there. A clear 4xx each time (never
/// a 500), every refusal recorded. Real Identity, PostgreSQL, Redis-protocol server, SMTP.
/// </summary>
[TestClass]
public sealed class AppAttackTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_identity = await IdentityHost.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_identity.DisposeAsync();

    [TestMethod]
    public async Task The_registration_endpoint_answers_huge_wrong_typed_and_oddly_spelled_requests_with_a_4xx_and_records_them()
    {
        using var client = s_identity.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "not-a-real-initial-access-token");
        var huge = "{\"client_name\":\"" + new string('a', 1024 * 1024) + "\"}";
        var bodies = new (string Name, HttpContent Content)[]
        {
            ("1 MB with a length", new StringContent(huge, Encoding.UTF8, "application/json")),
            ("1 MB chunked", new ChunkedContent(huge)),
            ("truncated", new StringContent("{\"client_name\": \"x\", \"grant_types\": [", Encoding.UTF8, "application/json")),
            ("wrong types", new StringContent("{\"client_name\": 7, \"redirect_uris\": \"https://a.example/cb\", \"access_token_lifetime\": \"long\"}", Encoding.UTF8, "application/json")),
            ("nulls in arrays", new StringContent("{\"client_name\": \"x\", \"redirect_uris\": [null], \"grant_types\": [null]}", Encoding.UTF8, "application/json")),
            ("not JSON", new StringContent("client_name=x", Encoding.UTF8, "application/x-www-form-urlencoded")),
        };
        foreach (var (name, content) in bodies)
        {
            using (content)
            using (var response = await client.PostAsync(new Uri("/connect/register", UriKind.Relative), content, Ct))
            {
                Assert.IsTrue((int)response.StatusCode is >= 400 and < 500, $"{name}: {(int)response.StatusCode}");
                // The endpoint's own refusals are OAuth errors; a body past the platform's 1 MiB cap is refused before it
                // (413 problem details, as everywhere).
                var body = await response.Content.ReadFromJsonAsync<JsonElement>(Ct);
                Assert.IsTrue(body.TryGetProperty("error", out _) || (response.StatusCode == HttpStatusCode.RequestEntityTooLarge && body.TryGetProperty("type", out _)), $"{name}: {body}");
            }
        }
        foreach (var path in new[] { "/connect/register/", "/Connect/Register", "/CONNECT/REGISTER/" })
        {
            using var anonymous = s_identity.CreateClient();
            using var response = await anonymous.PostAsync(new Uri(path, UriKind.Relative), new StringContent("{}", Encoding.UTF8, "application/json"), Ct);
            Assert.AreEqual(HttpStatusCode.Unauthorized, response.StatusCode, path);
        }
        using (var longId = await client.GetAsync(new Uri("/connect/register/" + new string('x', 4000), UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, longId.StatusCode);
        }
        await using var scope = s_identity.Services.CreateAsyncScope();
        var refusals = await scope.ServiceProvider.GetRequiredService<IdentityDataContext>().AppAuditEntries
            .CountAsync(e => e.Action.StartsWith("app.") && e.Outcome == "refused", Ct);
        // Four bodies and four requests reached the endpoint (the megabyte ones may be stopped by the platform's cap first).
        Assert.IsTrue(refusals >= 8, $"every refusal the endpoint made is recorded ({refusals})");
    }

    [TestMethod]
    public async Task A_one_megabyte_form_field_on_the_developer_page_is_an_error_beside_the_field_and_nothing_is_registered()
    {
        var (developer, _) = await NewDeveloperAsync(s_identity, Ct);
        using (developer)
        {
            // 900 KB in one field: under the platform's cap, so the page answers it — beside the field, not echoed back.
            var (html, clientId, _) = await CreateAppAsync(developer, Fields(new string('n', 900 * 1024), "spa", ["authorization_code"], ["https://a.example/cb"], ["openid"]), Ct);
            Assert.IsNull(clientId);
            StringAssert.Contains(ErrorOf(html, "client_name"), "at most 100");
            Assert.IsFalse(html.Contains(new string('n', 1000), StringComparison.Ordinal), "the field is not echoed back");
            // Past the cap (a megabyte of redirect URIs): 413 problem details before the page runs.
            using var huge = await PostPageAsync(developer, "/developers/apps", "Create",
                Fields("Huge", "spa", ["authorization_code"], [string.Join('\n', Enumerable.Repeat("https://a.example/cb", 60_000))], ["openid"]), Ct);
            Assert.AreEqual(HttpStatusCode.RequestEntityTooLarge, huge.StatusCode);
            StringAssert.Contains(await huge.Content.ReadAsStringAsync(Ct), "body-too-large");
        }
    }

    [TestMethod]
    public async Task A_burst_of_Allow_posts_for_one_consent_page_never_fails_and_leaves_one_consent()
    {
        var (person, email) = await NewDeveloperAsync(s_identity, Ct);
        using (person)
        {
            using var page = await person.GetAsync(new Uri(AuthorizeUrl(Pkce.Create(), "burst", scope: "openid api", clientId: IdentityHost.ThirdPartyClient), UriKind.Relative), Ct);
            var html = await page.Content.ReadAsStringAsync(Ct);
            var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
            {
                using var copy = new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(html) };
                using var answer = await AnswerConsentAsync(person, copy, "allow", Ct);
                return answer.StatusCode;
            }));
            CollectionAssert.AreEqual(Enumerable.Repeat(HttpStatusCode.Redirect, 8).ToArray(), answers, "every post gets its code, none a 500");
            await using var scope = s_identity.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
            var userId = (await db.Users.SingleAsync(u => u.Email == email, Ct)).Id;
            Assert.AreEqual(1, await db.AppConsents.CountAsync(c => c.UserId == userId && c.ClientId == IdentityHost.ThirdPartyClient, Ct));
        }
    }

    [TestMethod]
    public async Task Actions_on_apps_that_are_not_there_are_refused_and_recorded()
    {
        await using var scope = s_identity.Services.CreateAsyncScope();
        var registry = scope.ServiceProvider.GetRequiredService<ClippyBot.Identity.Apps.AppRegistry>();
        var actor = Guid.NewGuid();
        var missing = "app_" + new string('z', 300);
        Assert.IsFalse(await registry.SuspendAsync(actor, missing, "why", Ct));
        Assert.IsFalse(await registry.ResumeAsync(actor, missing, Ct));
        Assert.IsFalse(await registry.SetFirstPartyAsync(actor, missing, true, Ct));
        Assert.IsFalse(await registry.DeleteAsync(actor, missing, Ct));
        Assert.IsFalse(await registry.DisconnectAsync(actor, missing, Ct));
        var recorded = await scope.ServiceProvider.GetRequiredService<IdentityDataContext>().AppAuditEntries
            .Where(e => e.ActorId == actor && e.Outcome == "refused").Select(e => e.Action).ToListAsync(Ct);
        CollectionAssert.AreEquivalent(new[] { "app.suspend", "app.resume", "app.first-party", "app.delete", "app.disconnect" }, recorded);
    }

    /// <summary>A body sent without a length (chunked), as a client streaming it would.</summary>
    private sealed class ChunkedContent(string text) : HttpContent
    {
        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(Encoding.UTF8.GetBytes(text)).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
