using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Api.Detection;
using ClippyBot.Tests.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

/// <summary>
/// #23 incidents and investigation: an incident's lifecycle (forward only, closed only with a review), containment taken
/// from the incident (the real actions, each an automatic timeline entry), incidents opened from alerts, affected people
/// and workspaces derived from the audit chains, and the audit search and export across chains — addresses opened only
/// for an administrator with a second factor. Every change and every refusal is in the platform chain.
/// </summary>
[TestClass]
public sealed class IncidentTests
{
    private const string OperatorClient = "clippybot-operator";
    private const string OperatorSecret = "operator-console-secret-for-tests-0123456789abcdefghijk";
    private static readonly string AdminEmail = OidcFlows.NewEmail();
    private static ApiTestbed s_testbed = null!;
    private static HttpClient s_admin = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        var ct = context.CancellationToken;
        s_testbed = await ApiTestbed.StartAsync(ct,
            apiSettings: new Dictionary<string, string?>
            {
                ["Operations:ClientId"] = OperatorClient,
                ["Detection:Rules:mass-key-revocations:Threshold"] = "1",
                ["RateLimits:Sensitive:PermitLimit"] = "1000",
            },
            identitySettings: new Dictionary<string, string?>
            {
                ["Identity:Administrators:0"] = AdminEmail,
                ["Oidc:Clients:6:ClientId"] = OperatorClient,
                ["Oidc:Clients:6:ClientSecret"] = OperatorSecret,
                ["Oidc:Clients:6:GrantTypes:0"] = "client_credentials",
                ["Oidc:Clients:6:Scopes:0"] = "api.operations",
            });
        s_admin = await ApiHost.NewAdministratorAsync(s_testbed.Identity, s_testbed.Api, AdminEmail, ct);
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        s_admin.Dispose();
        await s_testbed.DisposeAsync();
    }

    [TestMethod]
    public async Task An_incident_moves_forward_through_its_phases_and_closes_only_with_a_review_every_step_audited()
    {
        var id = await OpenAsync(s_admin, "Suspicious sign-ins", Ct);
        Assert.AreEqual(HttpStatusCode.OK, (await StatusAsync(id, "containment")).StatusCode);
        Assert.AreEqual(HttpStatusCode.OK, (await StatusAsync(id, "Investigation")).StatusCode, "names are read case-insensitively");

        using (var back = await StatusAsync(id, "detection"))
        {
            Assert.AreEqual(HttpStatusCode.Conflict, back.StatusCode, "an incident only moves forward");
            StringAssert.Contains(await back.Content.ReadAsStringAsync(Ct), "incident-state");
        }
        foreach (var odd in new[] { "1", "closed,detection", "", new string('x', 100_000), "Closed " })
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, (await StatusAsync(id, odd)).StatusCode, odd.Length > 20 ? "a huge value" : odd);
        }
        Assert.AreEqual(HttpStatusCode.Conflict, (await StatusAsync(id, "closed")).StatusCode, "no review yet");

        using (var review = await s_admin.SendJsonAsync(HttpMethod.Put, $"/api/admin/incidents/{id}/review", new { review = "Cause: reused passwords. Change: breached-password check at sign-up." }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, review.StatusCode, await review.Content.ReadAsStringAsync(Ct));
        }
        using (var closed = await StatusAsync(id, "closed"))
        {
            Assert.AreEqual(HttpStatusCode.OK, closed.StatusCode, await closed.Content.ReadAsStringAsync(Ct));
        }
        using (var late = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/notes", new { text = "after the fact" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Conflict, late.StatusCode, "a closed incident takes no more entries");
        }
        using (var truncated = await s_admin.PostAsync(new Uri($"/api/admin/incidents/{id}/status", UriKind.Relative), new StringContent("{\"status\":", System.Text.Encoding.UTF8, "application/json"), Ct))
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, truncated.StatusCode);
        }
        // Wrong-typed JSON on an oddly spelled path: a 400 too, and like every refusal of administration, on record.
        using (var wrongType = await s_admin.PostAsync(new Uri($"/API/Admin/Incidents/{id}/Alerts/", UriKind.Relative), new StringContent("{\"alertIds\":\"all\"}", System.Text.Encoding.UTF8, "application/json"), Ct))
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, wrongType.StatusCode);
            Assert.AreEqual("application/problem+json", wrongType.Content.Headers.ContentType?.MediaType);
        }
        var unreadable = (await PlatformAuditAsync(null)).Where(e => e.GetProperty("action").GetString() == "request.refused").Select(e => e.GetProperty("target").GetString()!).ToList();
        Assert.IsTrue(unreadable.Any(t => t.StartsWith($"POST /api/admin/incidents/{id}/status", StringComparison.Ordinal)), string.Join('\n', unreadable));
        Assert.IsTrue(unreadable.Any(t => t.StartsWith($"POST /API/Admin/Incidents/{id}/Alerts/", StringComparison.Ordinal)), string.Join('\n', unreadable));
        Assert.AreEqual(HttpStatusCode.NotFound, (await s_admin.GetAsync(new Uri($"/api/admin/incidents/{Guid.NewGuid()}", UriKind.Relative), Ct)).StatusCode);

        var detail = await DetailAsync(id);
        Assert.AreEqual("closed", detail.GetProperty("incident").GetProperty("status").GetString());
        var kinds = detail.GetProperty("timeline").EnumerateArray().Select(t => t.GetProperty("kind").GetString()).ToList();
        CollectionAssert.AreEqual(new[] { "opened", "status", "status", "review", "status" }, kinds);

        var audit = await PlatformAuditAsync(id.ToString());
        foreach (var (action, outcome) in new[] { ("incident.opened", "success"), ("incident.status_changed", "success"), ("incident.status_changed", "refused"),
                     ("incident.closed", "refused"), ("incident.reviewed", "success"), ("incident.closed", "success"), ("incident.noted", "refused") })
        {
            Assert.IsTrue(audit.Any(e => e.GetProperty("action").GetString() == action && e.GetProperty("outcome").GetString() == outcome), $"{action} {outcome}");
        }
    }

    [TestMethod]
    public async Task Containment_taken_from_the_incident_locks_the_account_disables_the_key_and_lands_in_the_timeline()
    {
        var victim = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(victim.Client, "compromised", Ct);
        var (keyId, key) = await ApiTestbed.CreateApiKeyAsync(victim.Client, workspaceId, ["dataRead"], null, Ct);
        using var keyClient = s_testbed.KeyClient(key);
        var id = await OpenAsync(s_admin, "Account takeover", Ct);

        Assert.AreEqual(HttpStatusCode.NoContent, (await ContainAsync(id, new { action = "lock-account", userId = victim.Subject })).StatusCode);
        Assert.AreEqual(HttpStatusCode.Unauthorized, (await victim.Client.GetAsync(new Uri("/api/me", UriKind.Relative), Ct)).StatusCode, "the account's token dies at once");
        Assert.AreEqual(HttpStatusCode.NoContent, (await ContainAsync(id, new { action = "disable-api-key", keyId })).StatusCode);
        Assert.AreEqual(HttpStatusCode.Unauthorized, (await keyClient.GetAsync(new Uri($"/api/workspaces/{workspaceId}/files", UriKind.Relative), Ct)).StatusCode);
        Assert.AreEqual(HttpStatusCode.NoContent, (await ContainAsync(id, new { action = "revoke-sessions", userId = victim.Subject })).StatusCode);
        Assert.AreEqual(HttpStatusCode.NotFound, (await ContainAsync(id, new { action = "lock-account", userId = Guid.NewGuid() })).StatusCode);
        foreach (var bad in new object[] { new { action = "delete-everything" }, new { action = "lock-account" }, new { action = "quarantine-plugin", pluginId = "../etc" } })
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, (await ContainAsync(id, bad)).StatusCode, JsonSerializer.Serialize(bad));
        }

        var timeline = (await DetailAsync(id)).GetProperty("timeline").EnumerateArray().Where(t => t.GetProperty("kind").GetString() == "containment")
            .Select(t => t.GetProperty("text").GetString()!).ToList();
        Assert.HasCount(4, timeline, string.Join('\n', timeline));
        Assert.IsTrue(timeline[0].Contains($"account {victim.Subject} locked", StringComparison.Ordinal));
        Assert.IsTrue(timeline[1].Contains($"API key {keyId} disabled", StringComparison.Ordinal));
        Assert.IsTrue(timeline[3].StartsWith("FAILED", StringComparison.Ordinal), timeline[3]);
        var audit = await PlatformAuditAsync(null);
        Assert.IsTrue(audit.Any(e => e.GetProperty("action").GetString() == "account.locked" && e.GetProperty("target").GetString() == victim.Subject));
        Assert.IsTrue(audit.Any(e => e.GetProperty("action").GetString() == "incident.containment" && e.GetProperty("outcome").GetString() == "failed"));
        Assert.IsTrue(audit.Any(e => e.GetProperty("action").GetString() == "incident.containment" && e.GetProperty("outcome").GetString() == "refused"));
    }

    [TestMethod]
    public async Task An_incident_opened_from_an_alert_links_it_and_derives_the_affected_people_and_workspaces_from_the_audit_chains()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var bystander = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "keys", Ct);
        await ApiTestbed.CreateWorkspaceAsync(bystander.Client, "elsewhere", Ct);
        var from = DateTimeOffset.UtcNow.AddMinutes(-1);
        for (var i = 0; i < 2; i++)
        {
            var (keyId, _) = await ApiTestbed.CreateApiKeyAsync(owner.Client, workspaceId, ["dataRead"], null, Ct);
            (await owner.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/api-keys/{keyId}", UriKind.Relative), Ct)).Dispose();
        }
        await s_testbed.Api.Services.GetRequiredService<AlertEvaluator>().EvaluateAsync(Ct);
        var alertId = (await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/alerts?rule=mass-key-revocations", Ct)).GetProperty("alerts")[0].GetProperty("id").GetGuid();

        using var opened = await s_admin.SendJsonAsync(HttpMethod.Post, "/api/admin/incidents", new { title = "Keys revoked in bulk", severity = "high", alertIds = new[] { alertId } }, Ct);
        Assert.AreEqual(HttpStatusCode.Created, opened.StatusCode, await opened.Content.ReadAsStringAsync(Ct));
        var detail = await opened.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var id = detail.GetProperty("incident").GetProperty("id").GetGuid();
        Assert.AreEqual(alertId, detail.GetProperty("alerts")[0].GetProperty("id").GetGuid());
        Assert.IsTrue(detail.GetProperty("timeline").EnumerateArray().Any(t => t.GetProperty("kind").GetString() == "alert"));

        using var derived = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/affected/derive",
            new { from, to = DateTimeOffset.UtcNow.AddMinutes(1), actorId = owner.Subject }, Ct);
        Assert.AreEqual(HttpStatusCode.OK, derived.StatusCode, await derived.Content.ReadAsStringAsync(Ct));
        var affected = (await DetailAsync(id)).GetProperty("affected").EnumerateArray().ToList();
        Assert.IsTrue(affected.Any(a => a.GetProperty("kind").GetString() == "person" && a.GetProperty("id").GetString() == owner.Subject && a.GetProperty("source").GetString() == "derived"));
        Assert.IsTrue(affected.Any(a => a.GetProperty("kind").GetString() == "workspace" && a.GetProperty("id").GetString() == workspaceId.ToString()));
        Assert.IsFalse(affected.Any(a => a.GetProperty("id").GetString() == bystander.Subject), "only what the audit shows");

        foreach (var bad in new object[] { new { from = DateTimeOffset.UtcNow, to = DateTimeOffset.UtcNow.AddDays(-1) }, new { from, to = from.AddDays(40) }, new { to = from } })
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, (await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/affected/derive", bad, Ct)).StatusCode);
        }
        using var unknownWorkspace = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/affected", new { workspaceIds = new[] { Guid.NewGuid() } }, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, unknownWorkspace.StatusCode);
        using var unknownAlert = await s_admin.SendJsonAsync(HttpMethod.Post, "/api/admin/incidents", new { title = "x", severity = "low", alertIds = new[] { Guid.NewGuid() } }, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, unknownAlert.StatusCode);
    }

    [TestMethod]
    public async Task The_audit_search_spans_every_chain_opens_addresses_only_for_administrators_with_a_second_factor_and_every_export_is_audited()
    {
        var person = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(person.Client, "investigated", Ct);
        (await person.Client.SendJsonAsync(HttpMethod.Patch, $"/api/workspaces/{workspaceId}", new { name = "investigated 2" }, Ct)).Dispose();
        var from = DateTimeOffset.UtcNow.AddMinutes(-5);
        var to = DateTimeOffset.UtcNow.AddMinutes(1);
        var range = $"from={Uri.EscapeDataString(from.ToString("O"))}&to={Uri.EscapeDataString(to.ToString("O"))}";

        var found = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/audit/search?actor={person.Subject}&{range}", Ct);
        var entries = found.GetProperty("entries").EnumerateArray().ToList();
        Assert.IsTrue(entries.Any(e => e.GetProperty("chainId").GetGuid() == workspaceId), "the workspace's chain");
        Assert.IsTrue(entries.Any(e => e.GetProperty("chainId").GetGuid() == Guid.Empty), "the platform chain (login.seen)");
        Assert.IsTrue(entries.All(e => e.GetProperty("ipAddress").GetString() == "127.0.0.1"), found.ToString());
        Assert.IsFalse(found.GetProperty("addressesRedacted").GetBoolean());

        var byAddress = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/audit/search?address=127.0.0.1&{range}&pageSize=500", Ct);
        Assert.IsTrue(byAddress.GetProperty("entries").EnumerateArray().Any(e => e.GetProperty("actorId").GetString() == person.Subject));

        // The operator console is no person with a second factor: addresses stay sealed, and it cannot search by them.
        var (status, token) = await OidcFlows.ClientCredentialsAsync(s_testbed.Identity.CreateClient(), OperatorClient, OperatorSecret, Ct, "api.operations");
        Assert.AreEqual(HttpStatusCode.OK, status, token.ToString());
        using var console = s_testbed.Api.CreateClient();
        console.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.GetProperty("access_token").GetString());
        var redacted = await console.GetFromJsonAsync<JsonElement>($"/api/admin/audit/search?actor={person.Subject}&{range}", Ct);
        Assert.IsTrue(redacted.GetProperty("addressesRedacted").GetBoolean());
        Assert.IsTrue(redacted.GetProperty("entries").EnumerateArray().All(e => e.GetProperty("ipAddress").GetString() == ""), redacted.ToString());
        Assert.AreEqual(HttpStatusCode.BadRequest, (await console.GetAsync(new Uri($"/api/admin/audit/search?address=127.0.0.1&{range}", UriKind.Relative), Ct)).StatusCode);

        foreach (var bad in new[] { $"from={Uri.EscapeDataString(to.ToString("O"))}&to={Uri.EscapeDataString(from.ToString("O"))}", "pageSize=0", "address=not-an-ip&" + range,
                     "address=127.0.0.1", "actor=" + new string('a', 300), "from=yesterday" })
        {
            using var refused = await s_admin.GetAsync(new Uri("/api/admin/audit/search?" + bad, UriKind.Relative), Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, refused.StatusCode, bad);
            Assert.AreEqual("application/problem+json", refused.Content.Headers.ContentType?.MediaType, bad);
        }

        var id = await OpenAsync(s_admin, "Investigate a workspace", Ct);
        using var export = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/audit-export", new { actor = person.Subject, from, to }, Ct);
        Assert.AreEqual(HttpStatusCode.OK, export.StatusCode, await export.Content.ReadAsStringAsync(Ct));
        Assert.AreEqual("application/json", export.Content.Headers.ContentType?.MediaType);
        StringAssert.StartsWith(export.Content.Headers.ContentDisposition?.FileName?.Trim('"'), $"incident-{id}-audit-");
        var document = await export.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.AreEqual(entries.Count, document.GetProperty("entries").GetArrayLength());
        Assert.AreEqual(id, document.GetProperty("incidentId").GetGuid());
        Assert.IsTrue((await PlatformAuditAsync(id.ToString())).Any(e => e.GetProperty("action").GetString() == "audit.exported" && e.GetProperty("outcome").GetString() == "success"),
            "the export itself is audited");
        Assert.IsTrue((await DetailAsync(id)).GetProperty("timeline").EnumerateArray().Any(t => t.GetProperty("text").GetString()!.StartsWith($"Exported {entries.Count} audit entries with addresses", StringComparison.Ordinal)));
    }

    internal static async Task<Guid> OpenAsync(HttpClient admin, string title, CancellationToken ct)
    {
        using var opened = await admin.SendJsonAsync(HttpMethod.Post, "/api/admin/incidents", new { title, severity = "high", summary = "opened by a test" }, ct);
        Assert.AreEqual(HttpStatusCode.Created, opened.StatusCode, await opened.Content.ReadAsStringAsync(ct));
        var detail = await opened.Content.ReadFromJsonAsync<JsonElement>(ct);
        Assert.AreEqual("detection", detail.GetProperty("incident").GetProperty("status").GetString());
        return detail.GetProperty("incident").GetProperty("id").GetGuid();
    }

    private Task<HttpResponseMessage> StatusAsync(Guid id, string status) =>
        s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/status", new { status }, Ct);

    private Task<HttpResponseMessage> ContainAsync(Guid id, object request) =>
        s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{id}/containment", request, Ct);

    private Task<JsonElement> DetailAsync(Guid id) => s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/incidents/{id}", Ct);

    private async Task<List<JsonElement>> PlatformAuditAsync(string? targetPrefix)
    {
        var page = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/audit?pageSize=200", Ct);
        return [.. page.GetProperty("entries").EnumerateArray().Where(e => targetPrefix is null || e.GetProperty("target").GetString()!.StartsWith(targetPrefix, StringComparison.Ordinal))];
    }
}
