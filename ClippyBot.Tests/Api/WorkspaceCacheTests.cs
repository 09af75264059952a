using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Api.Data;
using ClippyBot.Tests.Rig;

namespace ClippyBot.Tests.Api;

/// <summary>
/// Each Api replica keeps memberships in memory (WorkspaceStateCache); a change made through one replica must hold on
/// every other one at once, not when an entry expires.
/// </summary>
[TestClass]
public sealed class WorkspaceCacheTests
{
    private static ApiTestbed s_testbed = null!;
    private static ServiceFactory<ApiDbContext> s_replica = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        s_testbed = await ApiTestbed.StartAsync(context.CancellationToken);
        s_replica = await ApiHost.StartReplicaAsync(s_testbed.Identity, s_testbed.Api, context.CancellationToken);
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        await s_replica.DisposeAsync();
        await s_testbed.DisposeAsync();
    }

    [TestMethod]
    public async Task A_role_change_or_removal_on_one_replica_holds_on_the_other_within_a_second()
    {
        var ct = TestContext.CancellationToken;
        var (owner, workspaceId, member, memberOnReplica) = await AdminOnReplicaAsync("Replicated", ct);
        using var _ = memberOnReplica;
        var settings = $"/api/workspaces/{workspaceId}";

        // The replica caches the admin's membership (two reads: the second one from memory).
        for (var i = 0; i < 2; i++)
        {
            using var patch = await memberOnReplica.SendJsonAsync(HttpMethod.Patch, settings, new { name = "Replicated" }, ct);
            Assert.AreEqual(HttpStatusCode.OK, patch.StatusCode);
        }

        using (var demote = await owner.Client.SendJsonAsync(HttpMethod.Put, $"{settings}/members/{member.Subject}", new { role = "viewer" }, ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, demote.StatusCode);
        }
        await AnswersWithinASecondAsync(() => memberOnReplica.SendJsonAsync(HttpMethod.Patch, settings, new { name = "Replicated" }, ct), HttpStatusCode.Forbidden, ct);

        using (var remove = await owner.Client.DeleteAsync(new Uri($"{settings}/members/{member.Subject}", UriKind.Relative), ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, remove.StatusCode);
        }
        await AnswersWithinASecondAsync(() => memberOnReplica.GetAsync(new Uri(settings, UriKind.Relative), ct), HttpStatusCode.NotFound, ct);
    }

    [TestMethod]
    public async Task Turning_on_required_two_factor_on_one_replica_holds_on_the_other_within_a_second()
    {
        var ct = TestContext.CancellationToken;
        var (owner, workspaceId, _, adminOnReplica) = await AdminOnReplicaAsync("Strict", ct);
        using var _ = adminOnReplica;
        var members = $"/api/workspaces/{workspaceId}/members";
        Assert.AreEqual(HttpStatusCode.OK, (await adminOnReplica.GetAsync(new Uri(members, UriKind.Relative), ct)).StatusCode);

        // Turned on by the owner from a session with a second factor (a password-only session gets 409).
        using var ownerWithTotp = await s_testbed.WithTwoFactorAsync(owner.Email, ct);
        using (var strict = await ownerWithTotp.SendJsonAsync(HttpMethod.Patch, $"/api/workspaces/{workspaceId}", new { requireMfaForAdmins = true }, ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, strict.StatusCode, await strict.Content.ReadAsStringAsync(ct));
        }
        await AnswersWithinASecondAsync(() => adminOnReplica.GetAsync(new Uri(members, UriKind.Relative), ct), HttpStatusCode.Forbidden, ct);
        using var refused = await adminOnReplica.GetAsync(new Uri(members, UriKind.Relative), ct);
        Assert.AreEqual("https://clippybot.dev/problems/mfa-required", (await refused.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("type").GetString());
    }

    /// <summary>An owner's workspace with an admin, and that admin's client on the other replica.</summary>
    private static async Task<((HttpClient Client, string Email, string Subject) Owner, Guid WorkspaceId, (HttpClient Client, string Email, string Subject) Admin, HttpClient AdminOnReplica)>
        AdminOnReplicaAsync(string name, CancellationToken ct)
    {
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, name, ct);
        var admin = await s_testbed.JoinAsync(owner.Client, workspaceId, "admin", ct);
        var onReplica = s_replica.CreateClient();
        onReplica.DefaultRequestHeaders.Authorization = admin.Client.DefaultRequestHeaders.Authorization;
        return (owner, workspaceId, admin, onReplica);
    }

    private static async Task AnswersWithinASecondAsync(Func<Task<HttpResponseMessage>> request, HttpStatusCode expected, CancellationToken ct)
    {
        var last = HttpStatusCode.OK;
        await Poll.UntilAsync(async () =>
        {
            using var response = await request();
            last = response.StatusCode;
            return last == expected;
        }, TimeSpan.FromSeconds(1), $"{expected} on the other replica", ct);
        Assert.AreEqual(expected, last);
    }
}
