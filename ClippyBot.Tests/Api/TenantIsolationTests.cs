using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

/// <summary>
/// A hostile tenant against the Api (#16, first part): refusals recorded whatever the input, no 500 for malformed
/// requests, and no way for an owner to lock a workspace for good.
/// </summary>
[TestClass]
public sealed class TenantIsolationTests
{
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_testbed = await ApiTestbed.StartAsync(context.CancellationToken,
        // As in Development (where the fuzzing found the 500s): binding failures throw instead of answering 400 directly.
        apiServices: services => services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true));

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task Refused_requests_with_10_KB_path_segments_are_403_and_each_is_in_the_audit_chain()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Long paths", Ct);
        var (_, key) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], null, Ct);
        using var keyClient = s_testbed.KeyClient(key);
        var viewer = await s_testbed.JoinAsync(owner.Client, workspaceId, "viewer", Ct);
        var segment = new string('s', 10_240);

        foreach (var caller in new[] { keyClient, viewer.Client })
        {
            using var refused = await caller.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/secrets/{segment}", UriKind.Relative), Ct);
            Assert.AreEqual(HttpStatusCode.Forbidden, refused.StatusCode, await refused.Content.ReadAsStringAsync(Ct));
        }

        var page = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit?action=authorization.denied", Ct);
        var denied = page.GetProperty("entries").EnumerateArray().ToList();
        Assert.HasCount(2, denied, "both refusals are recorded");
        Assert.IsTrue(denied.All(e => e.GetProperty("target").GetString()!.EndsWith("…[truncated]", StringComparison.Ordinal)));
        CollectionAssert.AreEquivalent(new[] { "api_key", "user" }, denied.Select(e => e.GetProperty("actorType").GetString()).ToList());
        var verification = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", Ct);
        Assert.IsTrue(verification.GetProperty("intact").GetBoolean());
    }

    [TestMethod]
    public async Task Turning_on_the_mfa_policy_needs_the_callers_own_second_factor_and_never_an_api_key()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Lockout", Ct);

        using var passwordOnly = await owner.Client.SendJsonAsync(HttpMethod.Patch, $"/api/workspaces/{workspaceId}", new { requireMfaForAdmins = true }, Ct);
        Assert.AreEqual(HttpStatusCode.Conflict, passwordOnly.StatusCode);
        StringAssert.Contains(await passwordOnly.Content.ReadAsStringAsync(Ct), "mfa-required-to-enable");
        using (var stillReachable = await owner.Client.GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, stillReachable.StatusCode, "the owner did not lock themselves out");
        }

        var (_, key) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["workspaceSettings"], null, Ct);
        using var keyClient = s_testbed.KeyClient(key);
        using var byKey = await keyClient.SendJsonAsync(HttpMethod.Patch, $"/api/workspaces/{workspaceId}", new { requireMfaForAdmins = true }, Ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, byKey.StatusCode, "keys never change security settings");

        using var withTotp = await s_testbed.WithTwoFactorAsync(owner.Email, Ct);
        using var on = await withTotp.SendJsonAsync(HttpMethod.Patch, $"/api/workspaces/{workspaceId}", new { requireMfaForAdmins = true }, Ct);
        Assert.AreEqual(HttpStatusCode.OK, on.StatusCode, await on.Content.ReadAsStringAsync(Ct));
        using var off = await withTotp.SendJsonAsync(HttpMethod.Patch, $"/api/workspaces/{workspaceId}", new { requireMfaForAdmins = false }, Ct);
        Assert.AreEqual(HttpStatusCode.OK, off.StatusCode, "and the same session can turn it off again");
    }

    [TestMethod]
    public async Task Dates_with_any_offset_are_accepted_and_bad_query_values_are_400()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Offsets", Ct);
        using (var key = await owner.Client.PostAsync(new Uri($"/api/workspaces/{workspaceId}/api-keys", UriKind.Relative),
            new StringContent("""{"name":"offset","scopes":["dataRead"],"expiresAt":"2030-01-01T00:00:00+01:00"}""", Encoding.UTF8, "application/json"), Ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, key.StatusCode, await key.Content.ReadAsStringAsync(Ct));
            var expires = (await key.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("apiKey").GetProperty("expiresAt").GetDateTimeOffset();
            Assert.AreEqual(new DateTimeOffset(2029, 12, 31, 23, 0, 0, TimeSpan.Zero), expires.ToUniversalTime());
        }
        foreach (var query in new[] { "pageSize=abc", "pageSize=99999999999999", "pageSize=5&pageSize=6" })
        {
            using var audit = await owner.Client.GetAsync(new Uri($"/api/workspaces/{workspaceId}/audit?{query}", UriKind.Relative), Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, audit.StatusCode, query);
            Assert.AreEqual("application/problem+json", audit.Content.Headers.ContentType?.MediaType, query);
            var problem = await audit.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.IsTrue(problem.GetProperty("errors").TryGetProperty("pageSize", out _), $"{query}: the problem names the parameter: {problem}");
        }
        // A body that does not bind: the problem names the JSON member that went wrong.
        foreach (var (body, field) in new[] { ("""{"name":"k","scopes":["dataRead"],"expiresAt":true}""", "$.expiresAt"), ("""{"name":5}""", "$.name"), ("""{"name": """, "$.name"), ("[]", "$") })
        {
            using var bad = await owner.Client.PostAsync(new Uri($"/api/workspaces/{workspaceId}/api-keys", UriKind.Relative),
                new StringContent(body, Encoding.UTF8, "application/json"), Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, bad.StatusCode, body);
            var problem = await bad.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.IsTrue(problem.GetProperty("errors").TryGetProperty(field, out _), $"{body}: {problem}");
            Assert.DoesNotContain("ClippyBot", problem.ToString(), "no server type names");
        }
    }

    [TestMethod]
    public void Every_route_of_a_workspace_declares_its_permission()
    {
        // A route under {workspaceId} without RequirePermission would skip membership and role checks altogether.
        var undeclared = s_testbed.Api.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.Parameters.Any(p => p.Name == "workspaceId"))
            .Where(e => e.Metadata.GetMetadata<ClippyBot.Api.Workspaces.RequiredPermissionMetadata>() is null)
            // Platform administrators' routes about a workspace are guarded by the administrator policy instead.
            .Where(e => !(e.RoutePattern.RawText!.StartsWith("/api/admin/", StringComparison.Ordinal)
                          && e.Metadata.GetOrderedMetadata<Microsoft.AspNetCore.Authorization.IAuthorizeData>().Any(a => a.Policy == ClippyBot.Api.Containment.ContainmentEndpoints.PolicyName)))
            .Select(e => e.RoutePattern.RawText)
            .ToList();
        Assert.IsEmpty(undeclared, string.Join("\n", undeclared));
    }

    [TestMethod]
    public async Task Platform_admin_endpoints_refuse_ordinary_users_and_api_keys()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Not admins", Ct);
        var (_, key) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead", "pluginManagement", "workspaceSettings"], null, Ct);
        using var keyClient = s_testbed.KeyClient(key);
        foreach (var (method, path) in new[] { ("POST", "/api/admin/plugins"), ("POST", "/api/admin/encryption/rotate"), ("GET", "/api/admin/audit") })
        {
            foreach (var (who, client) in new[] { ("user", owner.Client), ("api key", keyClient) })
            {
                using var request = new HttpRequestMessage(new HttpMethod(method), path) { Content = new ByteArrayContent([1, 2, 3]) };
                using var response = await client.SendAsync(request, Ct);
                Assert.AreEqual(HttpStatusCode.Forbidden, response.StatusCode, $"{who}: {method} {path}");
            }
        }
    }

    [TestMethod]
    public async Task No_route_answers_a_malformed_body_with_a_server_error()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Fuzz", Ct);
        var (routes, failures) = await MalformedBodies.WalkAsync(s_testbed.Api.Services, owner.Client, Ct,
            parameter => parameter == "{workspaceId:guid}" ? workspaceId.ToString() : null);
        Assert.IsGreaterThanOrEqualTo(20, routes);
        Assert.IsEmpty(failures, string.Join("\n", failures));
    }

    [TestMethod]
    public async Task A_keys_permissions_never_exceed_its_creators_current_role_and_never_include_person_only_ones()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Bound keys", Ct);
        var admin = await s_testbed.JoinAsync(owner.Client, workspaceId, "admin", Ct);
        var (_, key) = await ApiTestbed.CreateApiKeyAsync(admin.Client, workspaceId, ["dataRead", "auditLogRead"], null, Ct);
        using var keyClient = s_testbed.KeyClient(key);
        var audit = $"/api/workspaces/{workspaceId}/audit";
        var read = $"/api/workspaces/{workspaceId}";
        Assert.AreEqual(HttpStatusCode.OK, (await keyClient.GetAsync(new Uri(audit, UriKind.Relative), Ct)).StatusCode);

        var listed = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/api-keys", Ct);
        Assert.AreEqual(admin.Subject, listed.EnumerateArray().Single().GetProperty("createdBy").GetString(), "the list says who made each key");

        // The creator is demoted to viewer: the key keeps only what a viewer has.
        using (var demote = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/members/{admin.Subject}", new { role = "viewer" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, demote.StatusCode, await demote.Content.ReadAsStringAsync(Ct));
        }
        Assert.AreEqual(HttpStatusCode.Forbidden, (await keyClient.GetAsync(new Uri(audit, UriKind.Relative), Ct)).StatusCode, "auditLogRead went with the role");
        Assert.AreEqual(HttpStatusCode.OK, (await keyClient.GetAsync(new Uri(read, UriKind.Relative), Ct)).StatusCode);

        // The creator is removed: the key does nothing any more.
        using (var remove = await owner.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/members/{admin.Subject}", UriKind.Relative), Ct))
        {
            Assert.IsTrue(remove.IsSuccessStatusCode, await remove.Content.ReadAsStringAsync(Ct));
        }
        Assert.AreEqual(HttpStatusCode.Forbidden, (await keyClient.GetAsync(new Uri(read, UriKind.Relative), Ct)).StatusCode);

        // An owner's key with every scope still cannot change roles or manage keys.
        var member = await s_testbed.JoinAsync(owner.Client, workspaceId, "member", Ct);
        var (_, ownersKey) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["memberManagement", "dataRead"], null, Ct);
        using var ownersKeyClient = s_testbed.KeyClient(ownersKey);
        using var promote = await ownersKeyClient.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/members/{member.Subject}", new { role = "admin" }, Ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, promote.StatusCode, "roles are a person's decision");
    }

    [TestMethod]
    public async Task Unverified_addresses_are_not_facts_and_invitations_are_limited_and_revocable()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Verified facts", Ct);
        var victim = OidcFlows.NewEmail();
        var token = await ApiTestbed.InviteAsync(owner.Client, workspaceId, victim, "member", Ct);

        // Someone registers the invitee's address without proving it: it matches nothing, shows as nothing, erases nothing.
        var squatter = await s_testbed.NewUserAsync(Ct, verified: false, email: victim);
        var ownWorkspace = await ApiTestbed.CreateWorkspaceAsync(squatter.Client, "Squat", Ct);
        var members = await squatter.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{ownWorkspace}/members", Ct);
        var me = members.EnumerateArray().Single();
        Assert.AreEqual("", me.GetProperty("email").GetString());
        Assert.IsFalse(me.GetProperty("emailVerified").GetBoolean());
        using (var invite = await squatter.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{ownWorkspace}/invitations", new { email = OidcFlows.NewEmail(), role = "member" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Forbidden, invite.StatusCode, "an unverified inviter cannot mail anyone");
            StringAssert.Contains(await invite.Content.ReadAsStringAsync(Ct), "email-unverified");
        }
        using (var deleted = await squatter.Client.SendJsonAsync(HttpMethod.Delete, $"/api/workspaces/{ownWorkspace}", new { confirmName = "Squat" }, Ct))
        {
            Assert.IsTrue(deleted.IsSuccessStatusCode, await deleted.Content.ReadAsStringAsync(Ct));
        }
        using (var erase = await squatter.Client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, "/api/me") { Content = JsonContent.Create(new { confirmEmail = victim }) }, Ct))
        {
            Assert.IsTrue(erase.IsSuccessStatusCode, await erase.Content.ReadAsStringAsync(Ct));
        }
        await using (var scope = s_testbed.Api.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ClippyBot.Api.Data.ApiDbContext>();
            Assert.AreEqual(1, await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(
                db.Invitations, i => i.WorkspaceId == workspaceId), "the real invitee's invitation survived the squatter's erasure");
        }

        // Per recipient per day: the sixth invitation to one address is refused.
        var statuses = new List<HttpStatusCode>();
        var target = OidcFlows.NewEmail();
        for (var i = 0; i < 6; i++)
        {
            using var invite = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/invitations", new { email = target, role = "viewer" }, Ct);
            statuses.Add(invite.StatusCode);
        }
        Assert.AreEqual(HttpStatusCode.TooManyRequests, statuses[^1]);
        Assert.AreEqual(5, statuses.Count(s => s == HttpStatusCode.Created));

        // Revoking an invitation kills its link, and is audited.
        var pendingId = (await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/invitations", new { email = OidcFlows.NewEmail(), role = "viewer" }, Ct)
            .ContinueWith(t => t.Result.Content.ReadFromJsonAsync<JsonElement>(Ct), Ct).Unwrap()).GetProperty("id").GetGuid();
        using (var revoke = await owner.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/invitations/{pendingId}", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, revoke.StatusCode);
        }
        var audit = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit?action=invitation.revoked", Ct);
        Assert.AreEqual(pendingId.ToString(), audit.GetProperty("entries").EnumerateArray().Single().GetProperty("target").GetString());

        // Another tenant cannot revoke this workspace's invitations through its own workspace: 404, recorded there.
        var other = await s_testbed.NewUserAsync(Ct);
        var otherWorkspace = await ApiTestbed.CreateWorkspaceAsync(other.Client, "Other tenant", Ct);
        var victimInvitation = (await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/invitations", new { email = OidcFlows.NewEmail(), role = "viewer" }, Ct)
            .ContinueWith(t => t.Result.Content.ReadFromJsonAsync<JsonElement>(Ct), Ct).Unwrap()).GetProperty("id").GetGuid();
        using (var foreign = await other.Client.DeleteAsync(new Uri($"/api/workspaces/{otherWorkspace}/invitations/{victimInvitation}", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.NotFound, foreign.StatusCode);
        }
        using (var direct = await other.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/invitations/{victimInvitation}", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.NotFound, direct.StatusCode, "not a member: the workspace does not exist for them");
        }
        var refusals = await other.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{otherWorkspace}/audit?action=invitation.revoked", Ct);
        Assert.AreEqual("not_found", refusals.GetProperty("entries").EnumerateArray().Single().GetProperty("outcome").GetString());
        await using (var scope = s_testbed.Api.Services.CreateAsyncScope())
        {
            Assert.IsTrue(await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.AnyAsync(
                scope.ServiceProvider.GetRequiredService<ClippyBot.Api.Data.ApiDbContext>().Invitations, i => i.Id == victimInvitation, Ct), "the invitation is intact");
        }
        Assert.IsFalse(string.IsNullOrEmpty(token));
    }

    [TestMethod]
    public async Task Concurrent_uploads_that_each_fit_alone_stay_within_the_workspace_quota_together()
    {
        const int quota = 5 * 1024 * 1024, file = 1536 * 1024;
        await using var testbed = await ApiTestbed.StartAsync(Ct, apiSettings: new Dictionary<string, string?>
        {
            ["Files:MaxFileBytes"] = (3 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Files:WorkspaceQuotaBytes"] = quota.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        var owner = await testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Quota", Ct);
        var body = System.Security.Cryptography.RandomNumberGenerator.GetBytes(file);
        var uploads = Enumerable.Range(0, 5).Select(async i =>
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/pdf");
            using var response = await owner.Client.PostAsync(new Uri($"/api/workspaces/{workspaceId}/files?name=f{i}.pdf", UriKind.Relative), content, Ct);
            return response.StatusCode;
        });
        var statuses = await Task.WhenAll(uploads);
        Assert.AreEqual(3, statuses.Count(s => s == HttpStatusCode.Created), string.Join(", ", statuses));
        Assert.IsTrue(statuses.All(s => s is HttpStatusCode.Created or HttpStatusCode.RequestEntityTooLarge));
        var stored = (await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/files", Ct)).EnumerateArray().Sum(f => f.GetProperty("size").GetInt64());
        Assert.IsLessThanOrEqualTo(quota, stored);

        // Deleting gives the space back.
        var first = (await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/files", Ct)).EnumerateArray().First().GetProperty("id").GetGuid();
        using (await owner.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/files/{first}", UriKind.Relative), Ct))
        {
        }
        using var again = new ByteArrayContent(body);
        again.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/pdf");
        using var refill = await owner.Client.PostAsync(new Uri($"/api/workspaces/{workspaceId}/files?name=again.pdf", UriKind.Relative), again, Ct);
        Assert.AreEqual(HttpStatusCode.Created, refill.StatusCode);
    }

    [TestMethod]
    public void One_workspace_cannot_hold_more_than_its_share_of_concurrent_invocations()
    {
        var gate = new ClippyBot.PluginHost.Plugins.WorkspaceInvocationGate(Microsoft.Extensions.Options.Options.Create(
            new ClippyBot.PluginHost.Plugins.QuarantineOptions { MaxConcurrentInvocationsPerWorkspace = 2 }));
        var busy = Guid.NewGuid();
        Assert.IsTrue(gate.TryEnter(busy));
        Assert.IsTrue(gate.TryEnter(busy));
        Assert.IsFalse(gate.TryEnter(busy), "the third concurrent invocation of one workspace is refused");
        Assert.IsTrue(gate.TryEnter(Guid.NewGuid()), "another workspace is not affected");
        gate.Exit(busy);
        Assert.IsTrue(gate.TryEnter(busy), "a finished invocation frees its place");
    }

    /// <summary>Globally routable unicast only (IANA special-purpose registries), embedded IPv4 addresses unwrapped.</summary>
    [TestMethod]
    [DataRow("8.8.8.8", true)]
    [DataRow("93.184.216.34", true)]
    [DataRow("1.1.1.1", true)]
    [DataRow("2606:4700::1111", true)]
    [DataRow("2a00:1450:4001:80b::200e", true)]
    [DataRow("64:ff9b::808:808", true)]
    [DataRow("2002:0808:0808::1", true)]
    [DataRow("::ffff:8.8.8.8", true)]
    [DataRow("0.0.0.0", false)]
    [DataRow("0.1.2.3", false)]
    [DataRow("10.0.0.1", false)]
    [DataRow("100.64.0.1", false)]
    [DataRow("100.127.255.254", false)]
    [DataRow("127.0.0.1", false)]
    [DataRow("127.255.255.254", false)]
    [DataRow("169.254.169.254", false)]
    [DataRow("172.16.0.1", false)]
    [DataRow("172.31.255.254", false)]
    [DataRow("192.0.0.8", false)]
    [DataRow("192.0.2.1", false)]
    [DataRow("192.88.99.1", false)]
    [DataRow("192.168.1.1", false)]
    [DataRow("198.18.0.1", false)]
    [DataRow("198.19.255.254", false)]
    [DataRow("198.51.100.7", false)]
    [DataRow("203.0.113.9", false)]
    [DataRow("224.0.0.1", false)]
    [DataRow("239.255.255.250", false)]
    [DataRow("240.0.0.1", false)]
    [DataRow("255.255.255.255", false)]
    [DataRow("::", false)]
    [DataRow("::1", false)]
    [DataRow("::ffff:127.0.0.1", false)]
    [DataRow("::ffff:10.0.0.1", false)]
    [DataRow("::10.0.0.1", false)]
    [DataRow("64:ff9b::7f00:1", false)]
    [DataRow("64:ff9b::a9fe:a9fe", false)]
    [DataRow("64:ff9b:1::808:808", false)]
    [DataRow("2002:7f00:0001::1", false)]
    [DataRow("2002:c0a8:0101::1", false)]
    [DataRow("2001:0:4136:e378:8000:63bf:3fff:fdd2", false)]
    [DataRow("2001:db8::1", false)]
    [DataRow("2001:2::1", false)]
    [DataRow("3fff::1", false)]
    [DataRow("fe80::1", false)]
    [DataRow("fc00::1", false)]
    [DataRow("fd12:3456::1", false)]
    [DataRow("ff02::1", false)]
    [DataRow("100::1", false)]
    [DataRow("4000::1", false)]
    public void Plugins_reach_only_globally_routable_unicast_addresses(string address, bool allowed) =>
        Assert.AreEqual(allowed, ClippyBot.Plugins.Sandbox.GlobalAddress.IsGloballyRoutable(System.Net.IPAddress.Parse(address)), address);

    /// <summary>Which updates stay within a consent (adopted without asking) and which need a new one.</summary>
    [TestMethod]
    [DataRow("""[{"name":"http:fetch","parameters":{"hosts":["a.example","b.example"]}}]""", """[{"name":"http:fetch","parameters":{"hosts":["B.example"]}}]""", true)]
    [DataRow("""[{"name":"http:fetch","parameters":{"hosts":["a.example"]}}]""", """[{"name":"http:fetch","parameters":{"hosts":["a.example","c.example"]}}]""", false)]
    [DataRow("""[{"name":"http:fetch","parameters":{"hosts":["a.example"]}}]""", """[{"name":"http:fetch","parameters":{"hosts":["a.example:8443"]}}]""", false)]
    [DataRow("""[{"name":"storage:kv","parameters":{"quotaBytes":65536}}]""", """[{"name":"storage:kv","parameters":{"quotaBytes":4096}}]""", true)]
    [DataRow("""[{"name":"storage:kv","parameters":{"quotaBytes":4096}}]""", """[{"name":"storage:kv","parameters":{"quotaBytes":65536}}]""", false)]
    [DataRow("""[{"name":"storage:kv","parameters":{"quotaBytes":4096}}]""", """[{"name":"storage:kv"}]""", false)]
    [DataRow("""[{"name":"storage:kv","parameters":{"quotaBytes":1024}}]""", """[{"name":"storage:kv","parameters":{"quotaBytes":0}}]""", false)]
    [DataRow("""[{"name":"storage:kv","parameters":{"quotaBytes":1024}}]""", """[{"name":"storage:kv","parameters":{"quotaBytes":-1}}]""", false)]
    [DataRow("""[{"name":"storage:kv","parameters":{"quotaBytes":1024}}]""", """[{"name":"storage:kv","parameters":{"quotaBytes":0.5}}]""", false)]
    [DataRow("""[{"name":"storage:kv","parameters":{"quotaBytes":1024}}]""", """[{"name":"storage:kv","parameters":{"quotaBytes":1e30}}]""", false)]
    [DataRow("""[{"name":"secrets:read","parameters":{"names":["API_KEY"]}}]""", """[{"name":"secrets:read","parameters":{"names":["api_key"]}}]""", false)]
    [DataRow("""[{"name":"messages:send"},{"name":"messages:read"}]""", """[{"name":"messages:send"}]""", true)]
    [DataRow("""[{"name":"messages:send"}]""", """[{"name":"messages:send"},{"name":"messages:read"}]""", false)]
    [DataRow("""[{"name":"oauth:use","parameters":{"providers":["github"]}}]""", """[{"name":"oauth:use","parameters":{"providers":["github"],"scopes":["repo"]}}]""", false)]
    public void An_update_is_within_a_consent_only_when_it_asks_for_no_more(string consented, string update, bool within) =>
        Assert.AreEqual(within, ClippyBot.Api.Plugins.PluginConsent.IsWithin(
            JsonSerializer.Deserialize<List<ClippyBot.Api.Plugins.PermissionRequest>>(update, JsonSerializerOptions.Web)!,
            JsonSerializer.Deserialize<List<ClippyBot.Api.Plugins.PermissionRequest>>(consented, JsonSerializerOptions.Web)!), update);
}
