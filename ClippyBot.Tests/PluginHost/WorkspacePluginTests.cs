using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.PluginHost.Data;
using ClippyBot.Tests.Api;
using ClippyBot.Tests.Identity;
using Microsoft.Extensions.Logging;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.PluginHost;

/// <summary>
/// Identity, the Api and the PluginHost together: an administrator publishes a signed plugin through the Api, a workspace
/// owner installs it only after accepting its permissions, configures it and delivers an event; a PluginHost outage is a
/// quick 503, not a hang.
/// </summary>
[TestClass]
public sealed class WorkspacePluginTests
{
    private static readonly string AdminEmail = OidcFlows.NewEmail();
    private static ServiceFactory<IdentityDataContext> s_identity = null!;
    private static ServiceFactory<PluginsDbContext> s_pluginHost = null!;
    private static ServiceFactory<ApiDbContext> s_api = null!;
    private static HttpClient s_admin = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    /// <summary>This class's own security signals (the rig's Redis is shared).</summary>
    private static readonly string SignalPrefix = "clippybot:signals:" + Guid.NewGuid().ToString("N") + ":";

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        var ct = context.CancellationToken;
        s_identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?> { ["Identity:Administrators:0"] = AdminEmail, ["Signals:KeyPrefix"] = SignalPrefix });
        s_pluginHost = await PluginHostRig.StartAsync(s_identity, ct);
        s_api = await ApiHost.StartAsync(s_identity, TestRig.Redis.ConnectionString, ct,
            configureServices: services => services.AddHttpClient(ClippyBot.Api.Plugins.PluginHostClient.HttpClientName)
                .ConfigurePrimaryHttpMessageHandler(() => new LossyAnswers(s_pluginHost.Server.CreateHandler())),
            settings: new Dictionary<string, string?> { ["ServiceClient:PluginHostAddress"] = "https://localhost", ["Signals:KeyPrefix"] = SignalPrefix });
        s_admin = await ApiHost.NewAdministratorAsync(s_identity, s_api, AdminEmail, ct);
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        s_admin.Dispose();
        await s_api.DisposeAsync();
        await s_pluginHost.DisposeAsync();
        await s_identity.DisposeAsync();
    }

    private async Task PublishAsync(string id, string version, string permissions = "[]", string imports = "", string body = PluginCatalogTests.Echo)
    {
        using var bundle = new ByteArrayContent(PluginCatalogTests.Bundle(id, version, body, imports, permissions));
        using var published = await s_admin.PostAsync(new Uri("/api/admin/plugins", UriKind.Relative), bundle, Ct);
        Assert.AreEqual(HttpStatusCode.Created, published.StatusCode, await published.Content.ReadAsStringAsync(Ct));
    }

    [TestMethod]
    public async Task An_owner_installs_a_published_plugin_after_consenting_configures_it_and_delivers_an_event()
    {
        var id = "dev.test.ws" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0", permissions: """[{ "name": "messages:send" }]""",
            imports: "(import \"clippybot\" \"send_message\" (func $send (param i32 i32) (result i32)))",
            body: "(drop (call $send (local.get $p) (local.get $n))) " + PluginCatalogTests.Echo);
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Bots", Ct);

        var catalog = await owner.Client.GetFromJsonAsync<JsonElement>("/api/plugins", Ct);
        Assert.IsTrue(catalog.EnumerateArray().Any(p => p.GetProperty("id").GetString() == id));

        using var noConsent = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, acceptedPermissions = Array.Empty<string>() }, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, noConsent.StatusCode);
        StringAssert.Contains(await noConsent.Content.ReadAsStringAsync(Ct), "messages:send");
        using (var noVersion = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, acceptedPermissions = new[] { "messages:send" } }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, noVersion.StatusCode, "consent names the version that was shown");
            StringAssert.Contains(await noVersion.Content.ReadAsStringAsync(Ct), "version 1.0.0");
        }
        using var installed = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, version = "1.0.0", acceptedPermissions = new[] { "messages:send" } }, Ct);
        Assert.AreEqual(HttpStatusCode.Created, installed.StatusCode, await installed.Content.ReadAsStringAsync(Ct));

        using var configured = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/plugins/{id}/configuration", new { greeting = "hello" }, Ct);
        Assert.AreEqual(HttpStatusCode.NoContent, configured.StatusCode);

        using var delivered = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins/{id}/events", new { @event = "on_message", payload = new { text = "hi" } }, Ct);
        // (Read from the headers as sent: the ContentLength property would compute a length for a buffered body.)
        Assert.IsTrue(delivered.Content.Headers.NonValidated.TryGetValues("Content-Length", out var length), "the answer is sent whole with its length, not chunked");
        var body = await delivered.Content.ReadAsByteArrayAsync(Ct);
        Assert.AreEqual(body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), length.ToString());
        Assert.AreEqual("application/json", delivered.Content.Headers.ContentType?.MediaType);
        var result = JsonSerializer.Deserialize<JsonElement>(body);
        Assert.AreEqual("Completed", result.GetProperty("outcome").GetString(), result.ToString());
        var output = result.GetProperty("output");
        Assert.AreEqual("hi", output.GetProperty("payload").GetProperty("text").GetString());
        Assert.AreEqual("hello", output.GetProperty("configuration").GetProperty("greeting").GetString(), "the workspace's configuration reaches the plugin");
        Assert.AreEqual(1, result.GetProperty("messages").GetArrayLength(), "messages:send was granted by consent");

        var audit = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit?action=plugin.installed", Ct);
        StringAssert.Contains(audit.GetProperty("entries")[0].GetProperty("target").GetString(), "messages:send");
        using var removed = await owner.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/plugins/{id}", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.NoContent, removed.StatusCode);
        using var gone = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins/{id}/events", new { @event = "on_message", payload = new { } }, Ct);
        Assert.AreEqual(HttpStatusCode.NotFound, gone.StatusCode);
    }

    /// <summary>A plugin that answers with the workspace's github token (as a JSON string), or "none".</summary>
    private const string TokenEcho = """
        (local $len i32)
        (i32.store8 (i32.const 4096) (i32.const 34))
        (local.set $len (call $token (i32.const 2048) (i32.const 6) (i32.const 4097) (i32.const 512)))
        (if (result i64) (i32.lt_s (local.get $len) (i32.const 0))
          (then (i64.or (i64.shl (i64.const 3000) (i64.const 32)) (i64.const 6)))
          (else
            (i32.store8 (i32.add (i32.const 4097) (local.get $len)) (i32.const 34))
            (i64.or (i64.shl (i64.const 4096) (i64.const 32)) (i64.extend_i32_u (i32.add (local.get $len) (i32.const 2))))))
        """;

    [TestMethod]
    public async Task With_oauth_use_consented_the_plugin_gets_the_workspaces_connection_token_for_that_call_only()
    {
        var id = "dev.test.oauth" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0", permissions: """[{ "name": "oauth:use", "parameters": { "providers": ["github"] } }]""",
            imports: "(import \"clippybot\" \"oauth_token\" (func $token (param i32 i32 i32 i32) (result i32))) (data (i32.const 2048) \"github\") (data (i32.const 3000) \"\\22none\\22\")",
            body: TokenEcho);
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "OAuth", Ct);
        var token = "gho_" + System.Security.Cryptography.RandomNumberGenerator.GetHexString(20);
        (await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/connections", new { provider = "github", accessToken = token }, Ct)).Dispose();

        using var noConsent = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, acceptedPermissions = Array.Empty<string>() }, Ct);
        StringAssert.Contains(await noConsent.Content.ReadAsStringAsync(Ct), "github connection", "the consent names the connection");
        using var installed = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, version = "1.0.0", acceptedPermissions = new[] { "oauth:use" } }, Ct);
        Assert.AreEqual(HttpStatusCode.Created, installed.StatusCode, await installed.Content.ReadAsStringAsync(Ct));

        using var delivered = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins/{id}/events", new { @event = "on_message", payload = new { } }, Ct);
        var result = await delivered.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.AreEqual(token, result.GetProperty("output").GetString(), result.ToString());

        // Another workspace with the same plugin but no github connection: nothing to hand over.
        var otherWorkspace = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "No connection", Ct);
        (await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{otherWorkspace}/plugins", new { pluginId = id, version = "1.0.0", acceptedPermissions = new[] { "oauth:use" } }, Ct)).Dispose();
        using var none = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{otherWorkspace}/plugins/{id}/events", new { @event = "on_message", payload = new { } }, Ct);
        Assert.AreEqual("none", (await none.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("output").GetString());
        Assert.IsFalse((await PluginHostDumpAsync()).Contains(token, StringComparison.Ordinal), "the PluginHost stores no token");
    }

    [TestMethod]
    public async Task With_secrets_read_consented_the_plugin_reads_only_the_workspace_secrets_its_manifest_names()
    {
        var id = "dev.test.secret" + Guid.NewGuid().ToString("N")[..6];
        const string permissions = """[{ "name": "secrets:read", "parameters": { "names": ["WEBKEY"] } }]""";
        const string import = "(import \"clippybot\" \"secret_get\" (func $token (param i32 i32 i32 i32) (result i32))) (data (i32.const 3000) \"\\22none\\22\")";
        await PublishAsync(id, "1.0.0", permissions: permissions, imports: import + " (data (i32.const 2048) \"WEBKEY\")", body: TokenEcho);
        // Same grant, but the code asks for a secret its manifest does not name.
        var prying = id + "-prying";
        await PublishAsync(prying, "1.0.0", permissions: permissions, imports: import + " (data (i32.const 2048) \"OTHERS\")", body: TokenEcho);
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Secrets", Ct);
        var first = "whsec_" + System.Security.Cryptography.RandomNumberGenerator.GetHexString(20);
        using (var created = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/secrets/WEBKEY", new { value = first }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, created.StatusCode, await created.Content.ReadAsStringAsync(Ct));
            Assert.DoesNotContain(first, await created.Content.ReadAsStringAsync(Ct), "the value is never returned");
        }
        (await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/secrets/OTHERS", new { value = "other-" + first }, Ct)).Dispose();
        var listed = await owner.Client.GetStringAsync(new Uri($"/api/workspaces/{workspaceId}/secrets", UriKind.Relative), Ct);
        StringAssert.Contains(listed, "WEBKEY");
        Assert.DoesNotContain(first, listed, "lists show names only");

        using var noConsent = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, acceptedPermissions = Array.Empty<string>() }, Ct);
        StringAssert.Contains(await noConsent.Content.ReadAsStringAsync(Ct), "workspace secrets WEBKEY", "the consent names the secrets");
        foreach (var plugin in new[] { id, prying })
        {
            using var installed = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = plugin, version = "1.0.0", acceptedPermissions = new[] { "secrets:read" } }, Ct);
            Assert.AreEqual(HttpStatusCode.Created, installed.StatusCode, await installed.Content.ReadAsStringAsync(Ct));
        }

        Assert.AreEqual(first, await OutputAsync(id));
        var second = "whsec_" + System.Security.Cryptography.RandomNumberGenerator.GetHexString(20);
        using (var replaced = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/secrets/WEBKEY", new { value = second }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, replaced.StatusCode);
        }
        Assert.AreEqual(second, await OutputAsync(id), "each invocation gets the current value");
        Assert.AreEqual("none", await OutputAsync(prying), "a name the manifest does not declare is not there");
        using (var deleted = await owner.Client.SendJsonAsync(HttpMethod.Delete, $"/api/workspaces/{workspaceId}/secrets/WEBKEY", null, Ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        Assert.AreEqual("none", await OutputAsync(id), "a deleted secret is gone for the plugin too");

        using var badName = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/secrets/has%20space", new { value = "x" }, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, badName.StatusCode);
        StringAssert.Contains(await badName.Content.ReadAsStringAsync(Ct), "\"name\"");
        Assert.DoesNotContain(second, await PluginHostDumpAsync(), "the PluginHost stores no secret");

        async Task<string?> OutputAsync(string plugin)
        {
            using var delivered = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins/{plugin}/events", new { @event = "on_message", payload = new { } }, Ct);
            var result = await delivered.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.AreEqual("Completed", result.GetProperty("outcome").GetString(), result.ToString());
            return result.GetProperty("output").GetString();
        }
    }

    [TestMethod]
    public async Task Workspace_secrets_are_managed_by_owners_and_admins_only()
    {
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Secret roles", Ct);
        var (member, memberEmail, _) = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var invitation = await ApiTestbed.InviteAsync(owner.Client, workspaceId, memberEmail, "member", Ct);
        (await member.SendJsonAsync(HttpMethod.Post, "/api/invitations/accept", new { token = invitation }, Ct)).Dispose();
        using (var adminPut = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/secrets/KEY", new { value = "v" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, adminPut.StatusCode);
        }
        using var put = await member.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/secrets/KEY", new { value = "v" }, Ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, put.StatusCode);
        using var list = await member.GetAsync(new Uri($"/api/workspaces/{workspaceId}/secrets", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, list.StatusCode);
    }

    private async Task<string> PluginHostDumpAsync() =>
        await TestRig.Postgres.DumpAsync(s_pluginHost.Settings["ConnectionStrings:pluginsdb"]!, Ct);

    private static string Hosts(params string[] hosts) =>
        $$"""[{ "name": "http:fetch", "parameters": { "hosts": {{JsonSerializer.Serialize(hosts)}} } }]""";

    [TestMethod]
    public async Task Events_run_the_consented_version_narrower_updates_are_adopted_and_wider_ones_wait_for_consent()
    {
        var id = "dev.test.pin" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0", permissions: Hosts("a.example"));
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Pinned", Ct);
        var plugins = $"/api/workspaces/{workspaceId}/plugins";

        var catalog = await owner.Client.GetFromJsonAsync<JsonElement>("/api/plugins", Ct);
        var shown = catalog.EnumerateArray().Single(p => p.GetProperty("id").GetString() == id);
        Assert.AreEqual("a.example", shown.GetProperty("permissionRequests")[0].GetProperty("parameters").GetProperty("hosts")[0].GetString(),
            "the catalog shows every permission parameter");
        using (var noConsent = await owner.Client.SendJsonAsync(HttpMethod.Post, plugins, new { pluginId = id, acceptedPermissions = Array.Empty<string>() }, Ct))
        {
            StringAssert.Contains(await noConsent.Content.ReadAsStringAsync(Ct), "a.example", "the consent question names the hosts");
        }
        using (var installed = await owner.Client.SendJsonAsync(HttpMethod.Post, plugins, new { pluginId = id, version = "1.0.0", acceptedPermissions = new[] { "http:fetch" } }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, installed.StatusCode, await installed.Content.ReadAsStringAsync(Ct));
        }

        async Task<string> RanAsync()
        {
            using var delivered = await owner.Client.SendJsonAsync(HttpMethod.Post, $"{plugins}/{id}/events", new { @event = "on_message", payload = new { } }, Ct);
            var result = await delivered.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.AreEqual(HttpStatusCode.OK, delivered.StatusCode, result.ToString());
            Assert.AreEqual("Completed", result.GetProperty("outcome").GetString(), result.ToString());
            return result.GetProperty("version").GetString()!;
        }
        async Task<JsonElement> ListedAsync() =>
            (await owner.Client.GetFromJsonAsync<JsonElement>(plugins, Ct)).EnumerateArray().Single(p => p.GetProperty("pluginId").GetString() == id);

        Assert.AreEqual("1.0.0", await RanAsync());

        // Wider (a new host): the consented version keeps running — no quarantine — and the workspace sees the update waiting.
        await PublishAsync(id, "1.1.0", permissions: Hosts("a.example", "b.example"));
        Assert.AreEqual("1.0.0", await RanAsync(), "an update asking for a new host does not run without consent");
        var awaiting = (await ListedAsync()).GetProperty("updateAwaitingConsent");
        Assert.AreEqual("1.1.0", awaiting.GetProperty("version").GetString());
        StringAssert.Contains(awaiting.GetProperty("permissionRequests").GetRawText(), "b.example");

        using (var stale = await owner.Client.SendJsonAsync(HttpMethod.Post, $"{plugins}/{id}/consent", new { version = "1.0.0", acceptedPermissions = new[] { "http:fetch" } }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Conflict, stale.StatusCode, "consent names the version that was shown");
        }
        using (var consented = await owner.Client.SendJsonAsync(HttpMethod.Post, $"{plugins}/{id}/consent", new { version = "1.1.0", acceptedPermissions = new[] { "http:fetch" } }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, consented.StatusCode, await consented.Content.ReadAsStringAsync(Ct));
        }
        Assert.AreEqual("1.1.0", await RanAsync());
        Assert.AreEqual(JsonValueKind.Null, (await ListedAsync()).GetProperty("updateAwaitingConsent").ValueKind);

        // Narrower (one host fewer): adopted without asking, and audited.
        await PublishAsync(id, "1.2.0", permissions: Hosts("b.example"));
        Assert.AreEqual("1.2.0", await RanAsync(), "an update asking for less is adopted");
        var audit = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit?action=plugin.updated", Ct);
        StringAssert.Contains(audit.GetProperty("entries")[0].GetProperty("target").GetString(), "1.1.0->1.2.0");

        // Same permission name, another host: wider by its parameters, so it waits.
        await PublishAsync(id, "1.3.0", permissions: Hosts("c.example"));
        Assert.AreEqual("1.2.0", await RanAsync(), "a changed host list is a new consent, even under the same permission name");
    }

    [TestMethod]
    public async Task Another_tenant_cannot_consent_for_a_workspace_and_a_refused_consent_is_audited()
    {
        var id = "dev.test.cst" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0", permissions: Hosts("a.example"));
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Victim", Ct);
        (await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, version = "1.0.0", acceptedPermissions = new[] { "http:fetch" } }, Ct)).Dispose();
        await PublishAsync(id, "2.0.0", permissions: Hosts("a.example", "evil.example"));

        // A stranger (with a workspace of their own) accepts the wider update for the victim's workspace: refused.
        var stranger = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        await ApiTestbed.CreateWorkspaceAsync(stranger.Client, "Own", Ct);
        foreach (var path in new[] { $"/api/workspaces/{workspaceId}/plugins/{id}/consent", $"/API/Workspaces/{workspaceId}/plugins/{id}/consent/" })
        {
            using var refused = await stranger.Client.SendJsonAsync(HttpMethod.Post, path, new { version = "2.0.0", acceptedPermissions = new[] { "http:fetch" } }, Ct);
            Assert.IsTrue(refused.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.NotFound, $"{path}: {refused.StatusCode}");
        }
        var listed = (await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/plugins", Ct)).EnumerateArray().Single();
        Assert.AreEqual("1.0.0", listed.GetProperty("consentedVersion").GetString(), "the victim's consent is untouched");

        // The owner's own consent that does not match what 2.0.0 asks for: 400, and recorded as refused.
        using var wrong = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins/{id}/consent", new { version = "2.0.0", acceptedPermissions = Array.Empty<string>() }, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, wrong.StatusCode);
        var audit = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit?action=plugin.consented", Ct);
        Assert.IsTrue(audit.GetProperty("entries").EnumerateArray().Any(e => e.GetProperty("outcome").GetString() == "denied"), audit.ToString());
    }

    [TestMethod]
    public async Task A_quarantine_set_through_the_Api_stops_delivery_and_is_audited()
    {
        var id = "dev.test.q" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0");
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Q", Ct);
        (await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, version = "1.0.0", acceptedPermissions = Array.Empty<string>() }, Ct)).Dispose();

        using var set = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/plugins/{id}/quarantine", new { reason = "suspicious traffic" }, Ct);
        Assert.AreEqual(HttpStatusCode.NoContent, set.StatusCode, await set.Content.ReadAsStringAsync(Ct));
        using var refused = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins/{id}/events", new { @event = "on_message", payload = new { } }, Ct);
        Assert.AreEqual(HttpStatusCode.Locked, refused.StatusCode);
        StringAssert.Contains(await refused.Content.ReadAsStringAsync(Ct), "plugin-quarantined");
        var audit = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/audit?action=plugin.quarantined", Ct);
        Assert.IsTrue(audit.GetProperty("entries").EnumerateArray().Any(e => e.GetProperty("target").GetString()!.StartsWith(id, StringComparison.Ordinal)));
    }

    [TestMethod]
    public async Task A_quarantine_and_a_permission_violation_each_raise_one_alert_naming_the_plugin_and_the_workspace()
    {
        var id = "dev.test.qa" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0");
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "QA", Ct);
        var otherWorkspace = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "QA 2", Ct);
        var evaluator = s_api.Services.GetRequiredService<ClippyBot.Api.Detection.AlertEvaluator>();
        await evaluator.RunRoundAsync(Ct);
        Assert.IsEmpty(await PluginAlertsAsync(id), "installing and publishing is not an incident");

        using (var set = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/plugins/{id}/quarantine", new { reason = "suspicious traffic", workspaceId }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, set.StatusCode, await set.Content.ReadAsStringAsync(Ct));
        }
        // What the PluginHost's rule does when the plugin reaches for a capability the other workspace did not grant.
        await using (var scope = s_pluginHost.Services.CreateAsyncScope())
        {
            await scope.ServiceProvider.GetRequiredService<ClippyBot.PluginHost.Plugins.PluginInvoker>().QuarantineAsync(id, "1.0.0", otherWorkspace,
                "attempted a capability the workspace did not grant", ClippyBot.Contracts.QuarantineRules.PermissionViolation, Ct);
        }
        await evaluator.RunRoundAsync(Ct);
        await evaluator.RunRoundAsync(Ct);
        var alerts = await PluginAlertsAsync(id);
        Assert.HasCount(3, alerts, string.Join('\n', alerts));
        Assert.AreEqual(1, alerts.Count(a => a.GetProperty("rule").GetString() == "plugin-quarantines" && a.GetProperty("subject").GetString() == $"{id}@*/{workspaceId}"), "the kill switch holds every version");
        Assert.AreEqual(1, alerts.Count(a => a.GetProperty("rule").GetString() == "plugin-quarantines" && a.GetProperty("subject").GetString() == $"{id}@1.0.0/{otherWorkspace}"));
        Assert.AreEqual(1, alerts.Count(a => a.GetProperty("rule").GetString() == "plugin-permission-violations" && a.GetProperty("subject").GetString() == $"{id}@1.0.0/{otherWorkspace}"));
    }

    [TestMethod]
    public async Task A_plugin_quarantined_from_an_incident_stops_in_that_workspace_and_the_incident_records_it()
    {
        var id = "dev.test.qi" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0");
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "QI", Ct);
        var other = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "QI elsewhere", Ct);
        foreach (var workspace in new[] { workspaceId, other })
        {
            (await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspace}/plugins", new { pluginId = id, version = "1.0.0", acceptedPermissions = Array.Empty<string>() }, Ct)).Dispose();
        }
        var incident = await ClippyBot.Tests.Api.IncidentTests.OpenAsync(s_admin, "A plugin leaking data", Ct);

        using (var contained = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/incidents/{incident}/containment",
                   new { action = "quarantine-plugin", pluginId = id, workspaceId, reason = "exfiltration suspected" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, contained.StatusCode, await contained.Content.ReadAsStringAsync(Ct));
        }
        Assert.AreEqual(HttpStatusCode.Locked, (await DeliverAsync(owner.Client, workspaceId, id)).StatusCode, "stopped where it was contained");
        Assert.AreEqual(HttpStatusCode.OK, (await DeliverAsync(owner.Client, other, id)).StatusCode, "and nowhere else");
        var detail = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/incidents/{incident}", Ct);
        Assert.IsTrue(detail.GetProperty("timeline").EnumerateArray().Any(t => t.GetProperty("kind").GetString() == "containment"
            && t.GetProperty("text").GetString() == $"plugin {id} (every version) quarantined in workspace {workspaceId}"), detail.ToString());
        var audit = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/audit?action=plugin.quarantined", Ct);
        Assert.IsTrue(audit.GetProperty("entries").EnumerateArray().Any(e => e.GetProperty("target").GetString() == $"{id}:*:{workspaceId}"));
    }

    private async Task<List<JsonElement>> PluginAlertsAsync(string pluginId)
    {
        var page = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/alerts?pageSize=200", Ct);
        return [.. page.GetProperty("alerts").EnumerateArray().Where(a => a.GetProperty("subject").GetString()!.StartsWith(pluginId + "@", StringComparison.Ordinal))];
    }

    [TestMethod]
    public async Task Releasing_every_quarantine_lets_delivery_resume_in_every_workspace_and_is_audited()
    {
        var id = "dev.test.ra" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0");
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "RA", Ct);
        (await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, version = "1.0.0", acceptedPermissions = Array.Empty<string>() }, Ct)).Dispose();
        (await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/plugins/{id}/quarantine", new { reason = "incident" }, Ct)).Dispose();
        (await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/plugins/{id}/quarantine", new { reason = "one tenant", workspaceId }, Ct)).Dispose();
        Assert.AreEqual(HttpStatusCode.Locked, (await DeliverAsync(owner.Client, workspaceId, id)).StatusCode);

        using var released = await s_admin.PostAsync(new Uri("/api/admin/quarantines/release", UriKind.Relative), null, Ct);
        Assert.AreEqual(HttpStatusCode.OK, released.StatusCode, await released.Content.ReadAsStringAsync(Ct));
        Assert.IsGreaterThanOrEqualTo(2, (await released.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("released").GetInt32());
        using var delivered = await DeliverAsync(owner.Client, workspaceId, id);
        Assert.AreEqual(HttpStatusCode.OK, delivered.StatusCode, await delivered.Content.ReadAsStringAsync(Ct));
        var audit = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/audit?action=plugin.quarantines_released", Ct);
        Assert.IsTrue(audit.GetProperty("entries").EnumerateArray().Any(e => e.GetProperty("outcome").GetString() == "success"));
    }

    [TestMethod]
    public async Task Right_after_Identitys_signing_keys_rotate_the_Apis_new_service_token_reaches_the_PluginHost_without_a_failed_event()
    {
        var id = "dev.test.rk" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0");
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "RK", Ct);
        (await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, version = "1.0.0", acceptedPermissions = Array.Empty<string>() }, Ct)).Dispose();

        using var rotated = await s_admin.PostAsync(new Uri("/api/admin/signing-keys/rotate", UriKind.Relative), null, Ct);
        Assert.AreEqual(HttpStatusCode.OK, rotated.StatusCode, await rotated.Content.ReadAsStringAsync(Ct));
        // The Api's next service token is signed with the new key, which the PluginHost has not met: it is refused once
        // ("signature key was not found"), the PluginHost fetches Identity's keys, and the Api's one retry goes through.
        s_api.Services.GetRequiredService<ClippyBot.Api.ServiceClients.ServiceTokens>().Invalidate(ClippyBot.Api.Plugins.PluginHostClient.Scope);
        using var delivered = await DeliverAsync(owner.Client, workspaceId, id);
        Assert.AreEqual(HttpStatusCode.OK, delivered.StatusCode, await delivered.Content.ReadAsStringAsync(Ct));
    }

    private Task<HttpResponseMessage> DeliverAsync(HttpClient client, Guid workspaceId, string id) =>
        client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins/{id}/events", new { @event = "on_message", payload = new { } }, Ct);

    [TestMethod]
    [DataRow("%2E%2E")]
    [DataRow("%2E")]
    [DataRow("no.such.plugin")]
    [DataRow("LONG")]
    public async Task A_plugin_id_the_PluginHost_refuses_is_passed_on_as_its_4xx_never_a_500(string pluginId)
    {
        // The Api escapes the id, but the PluginHost may still refuse what it is sent: dot segments are normalised away
        // (its 404), an id past its request-line limit (its 414). Before: each escaped as a 500 from the Api.
        var id = pluginId == "LONG" ? new string('a', 9000) : pluginId;
        using var crashes = await s_admin.GetAsync(new Uri($"/api/admin/plugins/{id}/crashes", UriKind.Relative), Ct);
        var status = (int)crashes.StatusCode;
        Assert.IsTrue(status is 200 or (>= 400 and < 500), $"{status}: {await crashes.Content.ReadAsStringAsync(Ct)}");
        if (status >= 400)
        {
            Assert.AreEqual("application/problem+json", crashes.Content.Headers.ContentType?.MediaType);
        }
        using var quarantine = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/plugins/{id}/quarantine", new { reason = "probe" }, Ct);
        Assert.IsTrue((int)quarantine.StatusCode is (>= 200 and < 300) or (>= 400 and < 500), $"{(int)quarantine.StatusCode}: {await quarantine.Content.ReadAsStringAsync(Ct)}");
    }

    [TestMethod]
    public async Task A_kill_switch_that_does_not_take_is_audited_as_failed()
    {
        // An id the PluginHost cannot hold: the quarantine is refused, and the attempt is on the record.
        var id = "Not.A.Plugin." + Guid.NewGuid().ToString("N")[..6];
        using var refused = await s_admin.SendJsonAsync(HttpMethod.Post, $"/api/admin/plugins/{id}/quarantine", new { reason = "incident 42" }, Ct);
        Assert.AreEqual(HttpStatusCode.NotFound, refused.StatusCode, await refused.Content.ReadAsStringAsync(Ct));
        Assert.AreEqual("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        var audit = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/audit?action=plugin.quarantined", Ct);
        Assert.IsTrue(audit.GetProperty("entries").EnumerateArray().Any(e =>
            e.GetProperty("target").GetString()!.StartsWith(id, StringComparison.Ordinal) && e.GetProperty("outcome").GetString() == "failed"), audit.ToString());
    }

    [TestMethod]
    public async Task An_event_whose_answer_is_lost_is_not_sent_again()
    {
        var id = "dev.test.once" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0");
        var owner = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Once", Ct);
        using (var installed = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins", new { pluginId = id, version = "1.0.0", acceptedPermissions = Array.Empty<string>() }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, installed.StatusCode);
        }
        var before = LossyAnswers.Invocations;
        LossyAnswers.LoseInvokeAnswers = true;
        try
        {
            // The PluginHost runs the plugin, then its answer is lost on the way back (a 502 as a proxy would give).
            using var delivered = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins/{id}/events", new { @event = "on_message", payload = new { } }, Ct);
            Assert.AreEqual(HttpStatusCode.ServiceUnavailable, delivered.StatusCode, await delivered.Content.ReadAsStringAsync(Ct));
        }
        finally
        {
            LossyAnswers.LoseInvokeAnswers = false;
        }
        Assert.AreEqual(1, LossyAnswers.Invocations - before, "the plugin ran once: a POST is not retried");
        // Reads still retry: the catalog answers although its first answer is lost.
        LossyAnswers.LoseNextCatalogAnswer = true;
        Assert.AreEqual(HttpStatusCode.OK, (await owner.Client.GetAsync(new Uri("/api/plugins", UriKind.Relative), Ct)).StatusCode);
    }

    /// <summary>Passes every request to the PluginHost; on demand, replaces its answer with 502 after it did the work.</summary>
    private sealed class LossyAnswers(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        private static int s_invocations;
        private static int s_loseCatalog;

        public static volatile bool LoseInvokeAnswers;

        public static bool LoseNextCatalogAnswer
        {
            set => Interlocked.Exchange(ref s_loseCatalog, value ? 1 : 0);
        }

        public static int Invocations => Volatile.Read(ref s_invocations);

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            var path = request.RequestUri!.AbsolutePath;
            if (path.EndsWith("/invoke", StringComparison.Ordinal))
            {
                Interlocked.Increment(ref s_invocations);
                if (LoseInvokeAnswers)
                {
                    response.Dispose();
                    return new HttpResponseMessage(HttpStatusCode.BadGateway) { RequestMessage = request };
                }
            }
            else if (request.Method == HttpMethod.Get && path == "/internal/plugins" && Interlocked.Exchange(ref s_loseCatalog, 0) == 1)
            {
                response.Dispose();
                return new HttpResponseMessage(HttpStatusCode.BadGateway) { RequestMessage = request };
            }
            return response;
        }
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task A_PluginHost_outage_is_a_quick_503_not_a_hang()
    {
        var closed = LocalInfrastructureOptions.FreePort();
        var logs = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var api = await ApiHost.StartAsync(s_identity, TestRig.Redis.ConnectionString, Ct,
            configureServices: s => s.AddLogging(b => b.AddProvider(new CapturingLoggerProvider(logs))),
            settings: new Dictionary<string, string?> { ["ServiceClient:PluginHostAddress"] = $"http://127.0.0.1:{closed}" });
        var owner = await ApiHost.NewUserAsync(s_identity, api, Ct);
        using var response = await owner.Client.GetAsync(new Uri("/api/plugins", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.AreEqual("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        StringAssert.Contains(await response.Content.ReadAsStringAsync(Ct), "pluginhost-unavailable");
        Assert.AreEqual(TimeSpan.FromSeconds(5), response.Headers.RetryAfter?.Delta, "says when to try again");
        // Every endpoint that needs the PluginHost answers the same way (one mapping, not a catch per endpoint); what is
        // the Api's own is still served.
        var workspace = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Outage", Ct);
        foreach (var (method, path, body) in new (HttpMethod, string, object?)[]
        {
            (HttpMethod.Post, $"/api/workspaces/{workspace}/plugins", new { pluginId = "dev.example.echo", version = "1.0.0", acceptedPermissions = Array.Empty<string>() }),
            (HttpMethod.Get, $"/api/workspaces/{workspace}/plugins", null),
        })
        {
            using var answer = await owner.Client.SendJsonAsync(method, path, body, Ct);
            // The workspace's own list is the Api's: it is served without the PluginHost (no "update awaiting" part).
            var expected = method == HttpMethod.Get ? HttpStatusCode.OK : HttpStatusCode.ServiceUnavailable;
            Assert.AreEqual(expected, answer.StatusCode, $"{method} {path}: {await answer.Content.ReadAsStringAsync(Ct)}");
        }
        // An outage is a warning with its reason, not an unhandled error.
        Assert.IsFalse(logs.Any(l => l.StartsWith("[Error]", StringComparison.Ordinal) && l.Contains("unhandled exception", StringComparison.OrdinalIgnoreCase)), string.Join("\n", logs.Where(l => l.StartsWith("[Error]", StringComparison.Ordinal))));
        Assert.IsTrue(logs.Any(l => l.StartsWith("[Warning]", StringComparison.Ordinal) && l.Contains("PluginHost did not answer", StringComparison.Ordinal)));
    }

    [TestMethod]
    public async Task Owners_of_every_workspace_running_a_version_the_registry_withdrew_are_mailed_once_with_its_reason_and_nobody_else()
    {
        var id = "dev.test.yank" + Guid.NewGuid().ToString("N")[..6];
        var other = "dev.test.kept" + Guid.NewGuid().ToString("N")[..6];
        await PublishAsync(id, "1.0.0");
        await PublishAsync(other, "1.0.0");
        var first = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var second = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        var bystander = await ApiHost.NewUserAsync(s_identity, s_api, Ct);
        foreach (var (owner, plugin) in new[] { (first, id), (second, id), (bystander, other) })
        {
            var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Yank " + owner.Email[..6], Ct);
            using var installed = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/plugins",
                new { pluginId = plugin, version = "1.0.0", acceptedPermissions = Array.Empty<string>() }, Ct);
            Assert.AreEqual(HttpStatusCode.Created, installed.StatusCode, await installed.Content.ReadAsStringAsync(Ct));
        }

        // The registry withdrew the first (what RegistrySync records on every replica); an operator quarantined the other.
        await using (var scope = s_pluginHost.Services.CreateAsyncScope())
        {
            var invoker = scope.ServiceProvider.GetRequiredService<ClippyBot.PluginHost.Plugins.PluginInvoker>();
            await invoker.QuarantineAsync(id, "1.0.0", null, ClippyBot.PluginHost.Registry.RegistrySync.WithdrawnReason + ": <b>exfiltrates</b> workspace secrets",
                ClippyBot.PluginHost.Registry.RegistrySync.QuarantinedBy, Ct);
            await invoker.QuarantineAsync(other, "1.0.0", null, "an operator's private reason", "operator@example.test", Ct);
        }
        var notifier = s_api.Services.GetRequiredService<ClippyBot.Api.Plugins.WithdrawalNotifier>();
        await using (var scope = s_api.Services.CreateAsyncScope())
        {
            await notifier.NotifyAsync(scope.ServiceProvider, Ct);
        }

        foreach (var owner in new[] { first, second })
        {
            var mail = await TestRig.Smtp.WaitForAsync(owner.Email, $"{id} 1.0.0 was withdrawn", Ct);
            StringAssert.Contains(mail.Text, "Reason: " + ClippyBot.PluginHost.Registry.RegistrySync.WithdrawnReason + ": <b>exfiltrates</b> workspace secrets");
            StringAssert.Contains(mail.Html, "&lt;b&gt;exfiltrates&lt;/b&gt;", "the reason is encoded in the HTML body");
        }
        // Once: later passes (here, and every replica's own ticks) send nothing more.
        await using (var scope = s_api.Services.CreateAsyncScope())
        {
            Assert.AreEqual(0, await notifier.NotifyAsync(scope.ServiceProvider, Ct));
        }
        Assert.HasCount(1, (await TestRig.Smtp.MessagesToAsync(first.Email, Ct)).Where(m => m.Subject.Contains("withdrawn", StringComparison.Ordinal)).ToList());
        Assert.IsFalse((await TestRig.Smtp.MessagesToAsync(bystander.Email, Ct)).Any(m => m.Subject.Contains("withdrawn", StringComparison.Ordinal)),
            "an operator's quarantine is not a registry withdrawal, and its reason stays private");
        await using (var scope = s_api.Services.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<ApiDbContext>();
            Assert.AreEqual(2, await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.CountAsync(
                db.AuditEntries.Where(e => e.Action == "plugin.withdrawn" && e.Target.StartsWith(id)), Ct));
        }
    }
}
