using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;

namespace ClippyBot.Tests.Api;

/// <summary>
/// Platform administrators contain incidents through the Api: lock an account, end the sessions of an account or of a whole
/// workspace, disable any API key. Account actions go to Identity over HTTP with the Api's own service token; each takes
/// effect on the very next request and lands in the platform audit chain.
/// </summary>
[TestClass]
public sealed class ContainmentTests
{
    private static ApiTestbed s_testbed = null!;
    private static HttpClient s_admin = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        s_testbed = await ApiTestbed.StartWithAdminAsync(context.CancellationToken);
        s_admin = s_testbed.Admin;
    }

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task Locking_an_account_refuses_its_token_on_the_next_request_and_its_sign_in_until_unlocked()
    {
        var ct = TestContext.CancellationToken;
        var victim = await s_testbed.NewUserAsync(ct);
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(victim.Client, "/api/me"));

        using var locked = await s_admin.PostAsync(new Uri($"/api/admin/users/{victim.Subject}/lock", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.NoContent, locked.StatusCode, await locked.Content.ReadAsStringAsync(ct));

        Assert.AreEqual(HttpStatusCode.Unauthorized, await StatusAsync(victim.Client, "/api/me"), "the outstanding access token dies at once");
        using var login = await OidcFlows.LoginAsync(s_testbed.Identity.Browser(), victim.Email, OidcFlows.GoodPassword, ct);
        Assert.AreEqual(HttpStatusCode.OK, login.StatusCode, "a locked account gets the login form back, not a session");

        using var unlocked = await s_admin.PostAsync(new Uri($"/api/admin/users/{victim.Subject}/unlock", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.NoContent, unlocked.StatusCode);
        using var again = await OidcFlows.LoginAsync(s_testbed.Identity.Browser(), victim.Email, OidcFlows.GoodPassword, ct);
        Assert.AreEqual(HttpStatusCode.Redirect, again.StatusCode);

        var audit = await PlatformAuditAsync(ct);
        AssertAudited(audit, "account.locked", victim.Subject, "success");
        AssertAudited(audit, "account.unlocked", victim.Subject, "success");
    }

    [TestMethod]
    public async Task Revoking_one_account_ends_its_sessions_and_leaves_others_alone()
    {
        var ct = TestContext.CancellationToken;
        var victim = await s_testbed.NewUserAsync(ct);
        var bystander = await s_testbed.NewUserAsync(ct);

        using var revoked = await s_admin.PostAsync(new Uri($"/api/admin/users/{victim.Subject}/revoke-sessions", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.NoContent, revoked.StatusCode, await revoked.Content.ReadAsStringAsync(ct));

        Assert.AreEqual(HttpStatusCode.Unauthorized, await StatusAsync(victim.Client, "/api/me"));
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(bystander.Client, "/api/me"));
        AssertAudited(await PlatformAuditAsync(ct), "account.sessions_revoked", victim.Subject, "success");
    }

    [TestMethod]
    public async Task Ending_every_session_of_a_person_also_ends_the_api_keys_they_created_for_good()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "keys of a compromised account", ct);
        var (keyId, key) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], null, ct);
        var bystander = await s_testbed.NewUserAsync(ct);
        var otherWorkspace = await ApiTestbed.CreateWorkspaceAsync(bystander.Client, "unrelated", ct);
        var (_, otherKey) = await ApiTestbed.CreateApiKeyAsync(bystander.Client, otherWorkspace, ["dataRead"], null, ct);
        using var caller = s_testbed.KeyClient(key);
        using var otherCaller = s_testbed.KeyClient(otherKey);
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(caller, $"/api/workspaces/{workspaceId}"));

        // Account compromised: every session ended. A key the attacker minted with the stolen session must end too.
        using var revoked = await s_admin.PostAsync(new Uri($"/api/admin/users/{owner.Subject}/revoke-sessions", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.NoContent, revoked.StatusCode, await revoked.Content.ReadAsStringAsync(ct));

        Assert.AreEqual(HttpStatusCode.Unauthorized, await StatusAsync(caller, $"/api/workspaces/{workspaceId}"), "the key ends with its creator's sessions");
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(otherCaller, $"/api/workspaces/{otherWorkspace}"), "another person's key is untouched");
        // Durable: revoked in the database (not only while the Redis marker lives), and recorded in the workspace's chain.
        var apidb = s_testbed.Api.Settings["ConnectionStrings:apidb"]!;
        await Poll.UntilAsync(async () => await PrivacyTests.ScalarAsync<bool>(apidb, $"SELECT \"RevokedAt\" IS NOT NULL FROM \"ApiKeys\" WHERE \"Id\" = '{keyId}'", ct),
            TimeSpan.FromSeconds(10), "key revoked in the database", ct);
        Assert.AreEqual(1L, await PrivacyTests.ScalarAsync<long>(apidb,
            $"SELECT count(*) FROM \"AuditEntries\" WHERE \"ChainId\" = '{workspaceId}' AND \"Action\" = 'api_key.revoked' AND \"Target\" = '{keyId}:creator-signed-out-everywhere'", ct));
    }

    [TestMethod]
    public async Task Revoking_a_workspace_ends_the_sessions_of_every_member_and_of_no_one_else()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "incident", ct);
        var member = await s_testbed.JoinAsync(owner.Client, workspaceId, "member", ct);
        var outsider = await s_testbed.NewUserAsync(ct);

        using var response = await s_admin.PostAsync(new Uri($"/api/admin/workspaces/{workspaceId}/revoke-sessions", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.OK, response.StatusCode, await response.Content.ReadAsStringAsync(ct));
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(ct);
        Assert.AreEqual(2, body.GetProperty("revoked").GetInt32());

        Assert.AreEqual(HttpStatusCode.Unauthorized, await StatusAsync(owner.Client, "/api/me"));
        Assert.AreEqual(HttpStatusCode.Unauthorized, await StatusAsync(member.Client, "/api/me"));
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(outsider.Client, "/api/me"));
        AssertAudited(await PlatformAuditAsync(ct), "workspace.sessions_revoked", workspaceId.ToString(), "success");

        // The members sign in again and find the action in their workspace's own log.
        using var ownerAgain = await s_testbed.SignInAgainAsync(owner.Email, ct);
        var workspaceAudit = await ownerAgain.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit?action=workspace.sessions_revoked", ct);
        Assert.AreEqual(1, workspaceAudit.GetProperty("entries").GetArrayLength());
    }

    [TestMethod]
    public async Task A_disabled_API_key_is_refused_on_the_next_request_in_any_workspace()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "keys", ct);
        var (keyId, key) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], null, ct);
        using var caller = s_testbed.KeyClient(key);
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(caller, $"/api/workspaces/{workspaceId}"));

        using var disabled = await s_admin.PostAsync(new Uri($"/api/admin/api-keys/{keyId}/disable", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.NoContent, disabled.StatusCode, await disabled.Content.ReadAsStringAsync(ct));

        Assert.AreEqual(HttpStatusCode.Unauthorized, await StatusAsync(caller, $"/api/workspaces/{workspaceId}"));
        AssertAudited(await PlatformAuditAsync(ct), "api_key.disabled_by_platform", keyId.ToString(), "success");
        var workspaceAudit = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit?action=api_key.disabled_by_platform", ct);
        Assert.AreEqual(1, workspaceAudit.GetProperty("entries").GetArrayLength());
        Assert.AreEqual(HttpStatusCode.NotFound, (await s_admin.PostAsync(new Uri($"/api/admin/api-keys/{Guid.NewGuid()}/disable", UriKind.Relative), null, ct)).StatusCode);
    }

    [TestMethod]
    [DataRow("/api/admin/users/{0}/lock")]
    [DataRow("/api/admin/users/{0}/unlock")]
    [DataRow("/api/admin/users/{0}/revoke-sessions")]
    [DataRow("/api/admin/workspaces/{0}/revoke-sessions")]
    [DataRow("/api/admin/api-keys/{0}/disable")]
    public async Task Only_platform_administrators_may_contain(string template)
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "mine", ct);
        var (_, key) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], null, ct);
        var path = string.Format(System.Globalization.CultureInfo.InvariantCulture, template, template.Contains("workspaces", StringComparison.Ordinal) ? workspaceId : owner.Subject);

        using var byOwner = await owner.Client.PostAsync(new Uri(path, UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, byOwner.StatusCode, "a workspace owner is no platform administrator");
        using var keyClient = s_testbed.KeyClient(key);
        using var byKey = await keyClient.PostAsync(new Uri(path, UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, byKey.StatusCode, "an API key never reaches containment");
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(owner.Client, "/api/me"), "nothing happened to the owner");
    }

    [TestMethod]
    public async Task An_unknown_account_is_a_404_problem_and_is_audited_as_such()
    {
        var ct = TestContext.CancellationToken;
        var nobody = Guid.NewGuid().ToString();
        using var response = await s_admin.PostAsync(new Uri($"/api/admin/users/{nobody}/lock", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.NotFound, response.StatusCode);
        StringAssert.Contains(await response.Content.ReadAsStringAsync(ct), "unknown-account");
        AssertAudited(await PlatformAuditAsync(ct), "account.locked", nobody, "not_found");
    }

    [TestMethod]
    public async Task When_Identity_refuses_the_Api_nothing_changes_and_the_failure_is_a_502_problem_and_audited()
    {
        var ct = TestContext.CancellationToken;
        var victim = await s_testbed.NewUserAsync(ct);
        // A replica of the Api whose client secret Identity does not accept.
        await using var misconfigured = await ApiHost.StartAsync(s_testbed.Identity, TestRig.Redis.ConnectionString, ct,
            settings: new Dictionary<string, string?> { ["ServiceClient:ClientSecret"] = "not-the-secret" });
        using var admin = misconfigured.CreateClient();
        admin.DefaultRequestHeaders.Authorization = s_admin.DefaultRequestHeaders.Authorization;

        using var response = await admin.PostAsync(new Uri($"/api/admin/users/{victim.Subject}/lock", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.BadGateway, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync(ct);
        StringAssert.Contains(text, "identity-unavailable");
        Assert.DoesNotContain("not-the-secret", text);
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(victim.Client, "/api/me"), "the account was not touched");
        var audit = await admin.GetFromJsonAsync<JsonElement>("/api/admin/audit?action=account.locked&outcome=failed", ct);
        Assert.IsTrue(audit.GetProperty("entries").EnumerateArray().Any(e => e.GetProperty("target").GetString() == victim.Subject));
    }

    [TestMethod]
    public async Task The_platform_audit_chain_verifies()
    {
        var ct = TestContext.CancellationToken;
        var victim = await s_testbed.NewUserAsync(ct);
        (await s_admin.PostAsync(new Uri($"/api/admin/users/{victim.Subject}/revoke-sessions", UriKind.Relative), null, ct)).Dispose();
        var verification = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/audit/verify", ct);
        Assert.IsTrue(verification.GetProperty("intact").GetBoolean());
    }

    [TestMethod]
    public async Task Each_login_seen_by_the_Api_is_audited_once_with_who_and_from_where()
    {
        var ct = TestContext.CancellationToken;
        var user = await s_testbed.NewUserAsync(ct);
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(user.Client, "/api/me"));
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(user.Client, "/api/me"));
        using var secondSession = await s_testbed.SignInAgainAsync(user.Email, ct);
        Assert.AreEqual(HttpStatusCode.OK, await StatusAsync(secondSession, "/api/me"));

        var page = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/audit?action=login.seen&actorId={user.Subject}", ct);
        var entries = page.GetProperty("entries").EnumerateArray().ToList();
        Assert.HasCount(2, entries, "one entry per session, not per request");
        Assert.IsTrue(entries.All(e => e.GetProperty("ipAddress").GetString() == "127.0.0.1" && e.GetProperty("outcome").GetString() == "success"));
    }

    private async Task<HttpStatusCode> StatusAsync(HttpClient client, string path)
    {
        using var response = await client.GetAsync(new Uri(path, UriKind.Relative), TestContext.CancellationToken);
        return response.StatusCode;
    }

    private static async Task<JsonElement> PlatformAuditAsync(CancellationToken ct) =>
        await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/audit?pageSize=200", ct);

    private static void AssertAudited(JsonElement page, string action, string target, string outcome) =>
        Assert.IsTrue(page.GetProperty("entries").EnumerateArray().Any(e =>
                e.GetProperty("action").GetString() == action && e.GetProperty("target").GetString() == target
                && e.GetProperty("outcome").GetString() == outcome && e.GetProperty("actorType").GetString() == "user"),
            $"no {outcome} {action} of {target} by a user in {page}");
}
