using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Api.Data;
using ClippyBot.Api.Workspaces;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

[TestClass]
public sealed class WorkspaceTests
{
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_testbed = await ApiTestbed.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task Every_role_on_every_workspace_endpoint_gets_exactly_what_the_matrix_grants_and_outsiders_get_404()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Matrix", ct);
        var callers = new Dictionary<string, HttpClient> { ["owner"] = owner.Client };
        foreach (var role in new[] { WorkspaceRole.Admin, WorkspaceRole.Member, WorkspaceRole.Viewer, WorkspaceRole.Billing })
        {
            callers[role.ToString().ToLowerInvariant()] = (await s_testbed.JoinAsync(owner.Client, workspaceId, role.ToString().ToLowerInvariant(), ct)).Client;
        }
        var outsider = await s_testbed.NewUserAsync(ct);

        // Every endpoint that declares a workspace permission, found from the app's own routing table; "leave" last.
        var endpoints = s_testbed.Api.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => (Endpoint: e, Meta: e.Metadata.GetMetadata<RequiredPermissionMetadata>()))
            .Where(e => e.Meta is not null)
            .SelectMany(e => e.Endpoint.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Select(m => (Method: m, Pattern: e.Endpoint.RoutePattern.RawText!, e.Meta!.Permission)))
            .OrderBy(e => e.Pattern.EndsWith("/leave", StringComparison.Ordinal))
            .ToList();
        Assert.IsGreaterThanOrEqualTo(8, endpoints.Count);

        var checkedPairs = 0;
        foreach (var (method, pattern, permission) in endpoints)
        {
            // Other route values name things that do not exist: authorization is decided before the handler looks.
            var path = System.Text.RegularExpressions.Regex.Replace(
                pattern.Replace("{workspaceId:guid}", workspaceId.ToString(), StringComparison.Ordinal).Replace("{userId}", "no-such-user", StringComparison.Ordinal),
                "\\{[A-Za-z]+:guid\\}", _ => Guid.NewGuid().ToString());
            foreach (var (name, client) in callers)
            {
                var role = Enum.Parse<WorkspaceRole>(name, ignoreCase: true);
                var allowed = permission is not { } needed || RolePermissions.Grants(role, needed);
                using var response = await client.SendJsonAsync(new HttpMethod(method), path, new { }, ct);
                var problemType = await ProblemTypeAsync(response, ct);
                if (allowed)
                {
                    Assert.IsFalse(problemType is "https://clippybot.dev/problems/permission-denied" or "https://clippybot.dev/problems/workspace-not-found",
                        $"{name} {method} {pattern} should be allowed, got {(int)response.StatusCode} {problemType}");
                }
                else
                {
                    Assert.AreEqual(HttpStatusCode.Forbidden, response.StatusCode, $"{name} {method} {pattern}");
                    Assert.AreEqual("https://clippybot.dev/problems/permission-denied", problemType);
                }
                checkedPairs++;
            }
            using var outside = await outsider.Client.SendJsonAsync(new HttpMethod(method), path, new { }, ct);
            Assert.AreEqual(HttpStatusCode.NotFound, outside.StatusCode, $"outsider {method} {pattern}");
            Assert.AreEqual("https://clippybot.dev/problems/workspace-not-found", await ProblemTypeAsync(outside, ct));
        }
        Assert.AreEqual(endpoints.Count * 5, checkedPairs);
    }

    [TestMethod]
    public async Task A_guessed_or_foreign_workspace_id_looks_exactly_like_a_missing_one()
    {
        var ct = TestContext.CancellationToken;
        var alice = await s_testbed.NewUserAsync(ct);
        var bob = await s_testbed.NewUserAsync(ct);
        var alicesWorkspace = await ApiTestbed.CreateWorkspaceAsync(alice.Client, "Alice's", ct);
        await ApiTestbed.CreateWorkspaceAsync(bob.Client, "Bob's", ct);

        using var foreign = await bob.Client.GetAsync(new Uri($"/api/workspaces/{alicesWorkspace}", UriKind.Relative), ct);
        using var missing = await bob.Client.GetAsync(new Uri($"/api/workspaces/{Guid.NewGuid()}", UriKind.Relative), ct);

        Assert.AreEqual(HttpStatusCode.NotFound, foreign.StatusCode);
        Assert.AreEqual(missing.StatusCode, foreign.StatusCode);
        Assert.AreEqual(await ProblemTypeAsync(missing, ct), await ProblemTypeAsync(foreign, ct));
        var mine = await bob.Client.GetFromJsonAsync<JsonElement>("/api/workspaces", ct);
        Assert.AreEqual(1, mine.GetArrayLength(), "bob lists only his own workspace");
    }

    [TestMethod]
    public async Task A_workspace_always_keeps_an_owner_and_only_owners_make_owners()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Owned", ct);
        var admin = await s_testbed.JoinAsync(owner.Client, workspaceId, "admin", ct);

        using var leave = await owner.Client.PostAsync(new Uri($"/api/workspaces/{workspaceId}/leave", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.Conflict, leave.StatusCode);
        using var demote = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/members/{owner.Subject}", new { role = "Admin" }, ct);
        Assert.AreEqual(HttpStatusCode.Conflict, demote.StatusCode);
        Assert.AreEqual("https://clippybot.dev/problems/last-owner", await ProblemTypeAsync(demote, ct));

        using var adminPromotesSelf = await admin.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/members/{admin.Subject}", new { role = "Owner" }, ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, adminPromotesSelf.StatusCode);
        Assert.AreEqual("https://clippybot.dev/problems/owners-only", await ProblemTypeAsync(adminPromotesSelf, ct));
        using var adminRemovesOwner = await admin.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/members/{owner.Subject}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, adminRemovesOwner.StatusCode);

        using var promote = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/members/{admin.Subject}", new { role = "Owner" }, ct);
        Assert.AreEqual(HttpStatusCode.OK, promote.StatusCode);
        using var nowLeave = await owner.Client.PostAsync(new Uri($"/api/workspaces/{workspaceId}/leave", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.NoContent, nowLeave.StatusCode, "with a second owner the first may leave");
    }

    [TestMethod]
    public async Task Deleting_needs_the_exact_name_and_then_the_workspace_is_gone()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Doomed", ct);

        using var wrong = await owner.Client.SendJsonAsync(HttpMethod.Delete, $"/api/workspaces/{workspaceId}", new { confirmName = "doomed" }, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, wrong.StatusCode);
        using var right = await owner.Client.SendJsonAsync(HttpMethod.Delete, $"/api/workspaces/{workspaceId}", new { confirmName = "Doomed" }, ct);
        Assert.AreEqual(HttpStatusCode.NoContent, right.StatusCode);
        using var gone = await owner.Client.GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.NotFound, gone.StatusCode);
    }

    [TestMethod]
    public async Task An_invitation_works_once_and_only_for_the_invited_address()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Invites", ct);
        var invitee = await s_testbed.NewUserAsync(ct);
        var stranger = await s_testbed.NewUserAsync(ct);
        var token = await ApiTestbed.InviteAsync(owner.Client, workspaceId, invitee.Email, "viewer", ct);

        using var wrongPerson = await stranger.Client.SendJsonAsync(HttpMethod.Post, "/api/invitations/accept", new { token }, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, wrongPerson.StatusCode);
        using var accepted = await invitee.Client.SendJsonAsync(HttpMethod.Post, "/api/invitations/accept", new { token }, ct);
        Assert.AreEqual(HttpStatusCode.OK, accepted.StatusCode);
        using var again = await invitee.Client.SendJsonAsync(HttpMethod.Post, "/api/invitations/accept", new { token }, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, again.StatusCode);
        Assert.AreEqual("https://clippybot.dev/problems/invitation-invalid", await ProblemTypeAsync(again, ct));
    }

    [TestMethod]
    public async Task With_the_mfa_policy_on_owners_without_a_second_factor_are_refused_with_a_clear_problem()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Strict", ct);
        var member = await s_testbed.JoinAsync(owner.Client, workspaceId, "member", ct);

        // Turned on from a session with a second factor (a password-only session gets 409: TenantIsolationTests).
        using var withTotp = await s_testbed.WithTwoFactorAsync(owner.Email, ct);
        using var turnOn = await withTotp.SendJsonAsync(HttpMethod.Patch, $"/api/workspaces/{workspaceId}", new { requireMfaForAdmins = true }, ct);
        Assert.AreEqual(HttpStatusCode.OK, turnOn.StatusCode);

        // The owner's older, password-only token is refused now.
        using var ownerNow = await owner.Client.GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, ownerNow.StatusCode);
        Assert.AreEqual("https://clippybot.dev/problems/mfa-required", await ProblemTypeAsync(ownerNow, ct));
        using var memberNow = await member.Client.GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, memberNow.StatusCode, "the policy is for owners and admins");

        // The token from the sign-in with a code satisfies the policy.
        using var ownerWithTotp = await withTotp.GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, ownerWithTotp.StatusCode);
    }

    [TestMethod]
    public async Task Accepting_an_invitation_needs_a_verified_address_and_the_inviter_never_sees_the_token()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Verified only", ct);
        var unverified = await s_testbed.NewUserAsync(ct, verified: false);
        var token = await ApiTestbed.InviteAsync(owner.Client, workspaceId, unverified.Email, "member", ct);

        using var refused = await unverified.Client.SendJsonAsync(HttpMethod.Post, "/api/invitations/accept", new { token }, ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.AreEqual("https://clippybot.dev/problems/email-unverified", await ProblemTypeAsync(refused, ct));
        var mail = (await TestRig.Smtp.MessagesToAsync(unverified.Email, ct)).Single(m => m.Subject.StartsWith("Invitation to", StringComparison.Ordinal));
        StringAssert.Contains(mail.Subject, "Verified only");
        StringAssert.Contains(mail.Html, "/invitations/accept?token=");
    }

    [TestMethod]
    public async Task Bad_input_gets_validation_problems_naming_the_field()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        using var noName = await owner.Client.SendJsonAsync(HttpMethod.Post, "/api/workspaces", new { name = "  " }, ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, noName.StatusCode);
        using var problem = JsonDocument.Parse(await noName.Content.ReadAsStringAsync(ct));
        Assert.IsTrue(problem.RootElement.GetProperty("errors").TryGetProperty("name", out _));
    }

    private static async Task<string?> ProblemTypeAsync(HttpResponseMessage response, CancellationToken ct)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json")
        {
            return null;
        }
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync(ct));
        return doc.RootElement.TryGetProperty("type", out var type) ? type.GetString() : null;
    }
}
