using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Npgsql;

namespace ClippyBot.Tests.Api;

[TestClass]
public sealed class ApiKeyTests
{
    private static readonly FakeTimeProvider Clock = new(DateTimeOffset.UtcNow);
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) =>
        s_testbed = await ApiTestbed.StartAsync(context.CancellationToken, services => services.AddSingleton<TimeProvider>(Clock));

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task A_key_is_shown_once_in_a_scannable_format_and_acts_only_in_its_workspace_within_its_scopes()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Keys", ct);
        var otherWorkspace = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Other", ct);

        var (keyId, key) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], null, ct);
        StringAssert.Matches(key, new System.Text.RegularExpressions.Regex("^cbk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$"));
        var listed = await owner.Client.GetStringAsync(new Uri($"/api/workspaces/{workspaceId}/api-keys", UriKind.Relative), ct);
        Assert.IsFalse(listed.Contains(key[^43..], StringComparison.Ordinal), "the secret is never shown again");

        using var caller = KeyClient(key);
        Assert.AreEqual(HttpStatusCode.OK, (await caller.GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct)).StatusCode);
        Assert.AreEqual(HttpStatusCode.Forbidden, (await caller.SendJsonAsync(HttpMethod.Patch, $"/api/workspaces/{workspaceId}", new { name = "x" }, ct)).StatusCode,
            "outside its scopes");
        Assert.AreEqual(HttpStatusCode.NotFound, (await caller.GetAsync(new Uri($"/api/workspaces/{otherWorkspace}", UriKind.Relative), ct)).StatusCode,
            "another workspace of the same owner");
        Assert.AreEqual(HttpStatusCode.Forbidden, (await caller.GetAsync(new Uri("/api/workspaces", UriKind.Relative), ct)).StatusCode,
            "endpoints outside a workspace are for people");
        Assert.AreEqual(HttpStatusCode.Forbidden, (await caller.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/api-keys",
            new { name = "more", scopes = new[] { "dataRead" } }, ct)).StatusCode, "a key cannot mint keys");

        var usage = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/api-keys", ct);
        var entry = usage.EnumerateArray().Single(k => k.GetProperty("id").GetGuid() == keyId);
        Assert.AreNotEqual(JsonValueKind.Null, entry.GetProperty("lastUsedAt").ValueKind);
        Assert.IsFalse(string.IsNullOrEmpty(entry.GetProperty("lastUsedIp").GetString()));

        // A database dump of the key row holds no usable secret.
        await using var connection = new NpgsqlConnection(s_testbed.Api.Settings["ConnectionStrings:apidb"]);
        await connection.OpenAsync(ct);
        await using var dump = new NpgsqlCommand("SELECT row_to_json(k)::text FROM \"ApiKeys\" k", connection);
        var rows = (string)(await dump.ExecuteScalarAsync(ct))!;
        Assert.IsFalse(rows.Contains(key[^43..], StringComparison.Ordinal));
    }

    [TestMethod]
    public async Task Keys_cannot_exceed_their_creators_role_and_members_cannot_create_keys()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Limits", ct);
        var admin = (await s_testbed.JoinAsync(owner.Client, workspaceId, "admin", ct)).Client;
        var member = (await s_testbed.JoinAsync(owner.Client, workspaceId, "member", ct)).Client;

        using var beyond = await admin.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/api-keys",
            new { name = "billing", scopes = new[] { "billingDetails" } }, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, beyond.StatusCode);
        StringAssert.Contains(await beyond.Content.ReadAsStringAsync(ct), "BillingDetails");

        using var byMember = await member.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/api-keys",
            new { name = "mine", scopes = new[] { "dataRead" } }, ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, byMember.StatusCode);
    }

    [TestMethod]
    public async Task Revoked_and_expired_keys_are_refused_at_once_with_their_own_problem_types()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Lifecycle", ct);
        var (revokedId, revokedKey) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], null, ct);
        var (_, expiringKey) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], Clock.GetUtcNow().AddHours(1), ct);

        using var revoke = await owner.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/api-keys/{revokedId}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.NoContent, revoke.StatusCode);
        using var afterRevoke = await KeyClient(revokedKey).GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Unauthorized, afterRevoke.StatusCode);
        StringAssert.Contains(await afterRevoke.Content.ReadAsStringAsync(ct), "api-key-revoked");

        using var beforeExpiry = await KeyClient(expiringKey).GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, beforeExpiry.StatusCode);
        Clock.Advance(TimeSpan.FromHours(2));
        using var afterExpiry = await KeyClient(expiringKey).GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Unauthorized, afterExpiry.StatusCode);
        StringAssert.Contains(await afterExpiry.Content.ReadAsStringAsync(ct), "api-key-expired");

        var forged = revokedKey[..^5] + "AAAAA";
        using var wrong = await KeyClient(forged).GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Unauthorized, wrong.StatusCode);
        StringAssert.Contains(await wrong.Content.ReadAsStringAsync(ct), "api-key-invalid");
    }

    private static HttpClient KeyClient(string key) => s_testbed.KeyClient(key);


}
