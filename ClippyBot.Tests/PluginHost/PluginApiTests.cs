using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.PluginHost.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.PluginHost;

/// <summary>The PluginHost's internal API: only the Api's client-credentials token gets in; install, invoke, quarantine over HTTP.</summary>
[TestClass]
public sealed class PluginApiTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;
    private static ServiceFactory<PluginsDbContext> s_host = null!;
    private const string OtherService = "clippybot-other-service";

    /// <summary>As in Development, where a binding failure is thrown rather than answered (the exception handler must still say 400).</summary>
    private static void ThrowOnBadRequest(IServiceCollection services) =>
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
    private static readonly string OtherServiceSecret = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64);

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        var ct = context.CancellationToken;
        // Another service client that may ask for the pluginhost scope, but is not in PluginHost:AllowedClients.
        s_identity = await IdentityHost.StartAsync(ct, new Dictionary<string, string?>
        {
            ["Oidc:Clients:5:ClientId"] = OtherService,
            ["Oidc:Clients:5:ClientSecret"] = OtherServiceSecret,
            ["Oidc:Clients:5:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:5:Scopes:0"] = "pluginhost",
        }, ThrowOnBadRequest);
        s_host = await PluginHostRig.StartAsync(s_identity, ct, ThrowOnBadRequest);
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        await s_host.DisposeAsync();
        await s_identity.DisposeAsync();
    }

    private async Task<HttpClient> ApiServiceClientAsync()
    {
        var (status, tokens) = await OidcFlows.ClientCredentialsAsync(s_identity.CreateClient(), IdentityHost.ServiceClient, IdentityHost.ServiceSecret, Ct);
        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        var client = s_host.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        return client;
    }

    [TestMethod]
    public async Task Only_the_Api_service_token_gets_in()
    {
        using var anonymous = s_host.CreateClient();
        Assert.AreEqual(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri("/internal/plugins", UriKind.Relative), Ct)).StatusCode);
        Assert.AreEqual(HttpStatusCode.OK, (await anonymous.GetAsync(new Uri("/health", UriKind.Relative), Ct)).StatusCode, "probes stay open");

        // A person's token (for the Api's audience) is not the Api service's token.
        var (access, _, _) = await OidcFlows.NewLoginAsync(s_identity, Ct);
        using var person = s_host.CreateClient();
        person.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", access);
        Assert.AreEqual(HttpStatusCode.Unauthorized, (await person.GetAsync(new Uri("/internal/plugins", UriKind.Relative), Ct)).StatusCode);

        using var api = await ApiServiceClientAsync();
        Assert.AreEqual(HttpStatusCode.OK, (await api.GetAsync(new Uri("/internal/plugins", UriKind.Relative), Ct)).StatusCode);
    }

    [TestMethod]
    public async Task A_service_outside_the_allowed_clients_is_refused_even_with_a_pluginhost_token()
    {
        var (status, tokens) = await OidcFlows.ClientCredentialsAsync(s_identity.CreateClient(), OtherService, OtherServiceSecret, Ct);
        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        using var other = s_host.CreateClient();
        other.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        using var listed = await other.GetAsync(new Uri("/internal/plugins", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, listed.StatusCode, "the token is valid for the PluginHost, but its client is not the Api");
        using var body = new ByteArrayContent(PluginCatalogTests.Bundle("dev.test.intruder", "1.0.0"));
        using var installed = await other.PostAsync(new Uri("/internal/plugins", UriKind.Relative), body, Ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, installed.StatusCode);
    }

    [TestMethod]
    public async Task Identitys_internal_endpoints_refuse_service_tokens_without_their_own_scope()
    {
        async Task<HttpClient> WithScopeAsync(string scope)
        {
            var (status, tokens) = await OidcFlows.ClientCredentialsAsync(s_identity.CreateClient(), IdentityHost.ServiceClient, IdentityHost.ServiceSecret, Ct, scope);
            Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
            var client = s_identity.CreateClient();
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
            return client;
        }
        var someone = Guid.NewGuid();
        using var privacyOnly = await WithScopeAsync("identity.privacy");
        using var containmentOnly = await WithScopeAsync("identity.containment");
        using var pluginhostOnly = await WithScopeAsync("pluginhost");
        foreach (var (client, name) in new[] { (privacyOnly, "privacy"), (pluginhostOnly, "pluginhost") })
        {
            using var locked = await client.PostAsync(new Uri($"/internal/containment/users/{someone}/lock", UriKind.Relative), null, Ct);
            Assert.IsTrue(locked.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized, $"containment with a {name} token: {locked.StatusCode}");
        }
        foreach (var (client, name) in new[] { (containmentOnly, "containment"), (pluginhostOnly, "pluginhost") })
        {
            using var exported = await client.GetAsync(new Uri($"/internal/privacy/users/{someone}", UriKind.Relative), Ct);
            Assert.IsTrue(exported.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized, $"privacy export with a {name} token: {exported.StatusCode}");
            using var erased = await client.DeleteAsync(new Uri($"/internal/privacy/users/{someone}", UriKind.Relative), Ct);
            Assert.IsTrue(erased.StatusCode is HttpStatusCode.Forbidden or HttpStatusCode.Unauthorized, $"privacy erasure with a {name} token: {erased.StatusCode}");
        }
        // With its scope the same client gets through (404: no such account), so the refusals above are about the scope.
        using var allowed = await privacyOnly.GetAsync(new Uri($"/internal/privacy/users/{someone}", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.NotFound, allowed.StatusCode);
        using var contained = await containmentOnly.PostAsync(new Uri($"/internal/containment/users/{someone}/lock", UriKind.Relative), null, Ct);
        Assert.AreEqual(HttpStatusCode.NotFound, contained.StatusCode);
    }

    [TestMethod]
    public async Task No_route_of_the_PluginHost_or_of_Identity_answers_a_malformed_body_with_a_server_error()
    {
        using var api = await ApiServiceClientAsync();
        var (pluginRoutes, pluginFailures) = await MalformedBodies.WalkAsync(s_host.Services, api, Ct);
        Assert.IsGreaterThanOrEqualTo(4, pluginRoutes);

        // Identity's JSON endpoints with a service token that holds every internal scope; its pages with no session.
        var (status, tokens) = await OidcFlows.ClientCredentialsAsync(s_identity.CreateClient(), IdentityHost.ServiceClient, IdentityHost.ServiceSecret, Ct,
            "identity.containment identity.privacy identity.audit");
        Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
        using var service = s_identity.CreateClient();
        service.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        var (identityRoutes, identityFailures) = await MalformedBodies.WalkAsync(s_identity.Services, service, Ct);
        Assert.IsGreaterThanOrEqualTo(4, identityRoutes);

        var failures = pluginFailures.Concat(identityFailures).ToList();
        Assert.IsEmpty(failures, string.Join("\n", failures));
    }

    [TestMethod]
    public async Task A_bundle_is_installed_invoked_quarantined_and_released_over_http()
    {
        using var api = await ApiServiceClientAsync();
        var id = "dev.test.http" + Guid.NewGuid().ToString("N")[..6];
        using (var body = new ByteArrayContent(PluginCatalogTests.Bundle(id, "1.0.0")))
        {
            using var installed = await api.PostAsync(new Uri("/internal/plugins", UriKind.Relative), body, Ct);
            Assert.AreEqual(HttpStatusCode.Created, installed.StatusCode, await installed.Content.ReadAsStringAsync(Ct));
        }
        using (var again = new ByteArrayContent(PluginCatalogTests.Bundle(id, "1.0.0")))
        {
            using var refused = await api.PostAsync(new Uri("/internal/plugins", UriKind.Relative), again, Ct);
            Assert.AreEqual(HttpStatusCode.Conflict, refused.StatusCode);
            StringAssert.Contains(await refused.Content.ReadAsStringAsync(Ct), "plugin-notnewer");
        }
        using (var junk = new ByteArrayContent("not a bundle"u8.ToArray()))
        {
            using var refused = await api.PostAsync(new Uri("/internal/plugins", UriKind.Relative), junk, Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, refused.StatusCode);
            StringAssert.Contains(await refused.Content.ReadAsStringAsync(Ct), "plugin-malformed");
        }

        // A zip bomb through the install endpoint: refused as malformed, nothing installed, the host healthy.
        using (var bomb = new ByteArrayContent(ZipBomb()))
        {
            using var refused = await api.PostAsync(new Uri("/internal/plugins", UriKind.Relative), bomb, Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, refused.StatusCode);
            StringAssert.Contains(await refused.Content.ReadAsStringAsync(Ct), "plugin-malformed");
            Assert.AreEqual(HttpStatusCode.OK, (await s_host.CreateClient().GetAsync(new Uri("/health", UriKind.Relative), Ct)).StatusCode);
        }

        var workspace = Guid.NewGuid();
        using var invoked = await api.PostAsJsonAsync($"/internal/plugins/{id}/invoke", new { workspaceId = workspace, @event = "on_message", input = new { text = "hi" } }, Ct);
        Assert.IsTrue(invoked.Content.Headers.NonValidated.Contains("Content-Length"), "the answer is sent whole with its length, not chunked");
        var result = await invoked.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.AreEqual("Completed", result.GetProperty("outcome").GetString(), result.ToString());
        Assert.AreEqual("hi", result.GetProperty("output").GetProperty("text").GetString());

        using (await api.PostAsJsonAsync($"/internal/plugins/{id}/quarantine", new { version = "*", reason = "test", by = "admin-1" }, Ct))
        {
        }
        using var locked = await api.PostAsJsonAsync($"/internal/plugins/{id}/invoke", new { workspaceId = workspace, input = new { } }, Ct);
        Assert.AreEqual(HttpStatusCode.Locked, locked.StatusCode);
        StringAssert.Contains(await locked.Content.ReadAsStringAsync(Ct), "plugin-quarantined");
        using (await api.PostAsJsonAsync($"/internal/plugins/{id}/release", new { version = "*", by = "admin-1" }, Ct))
        {
        }
        using var unlocked = await api.PostAsJsonAsync($"/internal/plugins/{id}/invoke", new { workspaceId = workspace, input = new { } }, Ct);
        Assert.AreEqual(HttpStatusCode.OK, unlocked.StatusCode);
        Assert.AreEqual(HttpStatusCode.NotFound, (await api.PostAsJsonAsync("/internal/plugins/dev.none.here/invoke", new { workspaceId = workspace, input = new { } }, Ct)).StatusCode);
    }

    [TestMethod]
    public async Task A_quarantine_release_or_update_made_through_one_replica_is_announced_to_another_within_a_second()
    {
        using var api = await ApiServiceClientAsync();
        // The other replica never refreshes on its own and never treats its snapshot as stale: only the announcement
        // (NOTIFY on pluginsdb) can bring it the change within a second.
        var announcementsOnly = new Dictionary<string, string?>(s_host.Settings)
        {
            ["PluginState:RefreshInterval"] = "01:00:00",
            ["PluginState:StaleAfter"] = "02:00:00",
        };
        await using var replica = new ServiceFactory<PluginsDbContext>(announcementsOnly, services => services
            .AddHttpClient(ClippyBot.ServiceDefaults.Authentication.IdentityAccessTokens.MetadataClient)
            .ConfigurePrimaryHttpMessageHandler(() => s_identity.Server.CreateHandler()));
        using var other = replica.CreateClient();
        other.DefaultRequestHeaders.Authorization = api.DefaultRequestHeaders.Authorization;
        var id = "dev.test.replica" + Guid.NewGuid().ToString("N")[..6];
        using (var body = new ByteArrayContent(PluginCatalogTests.Bundle(id, "1.0.0")))
        {
            Assert.AreEqual(HttpStatusCode.Created, (await api.PostAsync(new Uri("/internal/plugins", UriKind.Relative), body, Ct)).StatusCode);
        }
        var workspace = Guid.NewGuid();
        Task<HttpResponseMessage> InvokeOnOther() => other.PostAsJsonAsync($"/internal/plugins/{id}/invoke", new { workspaceId = workspace, @event = "on_message", input = new { text = "hi" } }, Ct);
        // The first answer also waits for the replica's start (its LISTEN session); the later ones get a second each.
        await Poll.UntilAsync(async () =>
        {
            using var response = await InvokeOnOther();
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(15), "installed plugin runs on the other replica", Ct);

        using (await api.PostAsJsonAsync($"/internal/plugins/{id}/quarantine", new { version = "*", reason = "test", by = "admin-1" }, Ct))
        {
        }
        await WithinASecondAsync(InvokeOnOther, r => r.StatusCode == HttpStatusCode.Locked, "quarantine holds on the other replica");
        using (await api.PostAsJsonAsync($"/internal/plugins/{id}/release", new { version = "*", by = "admin-1" }, Ct))
        {
        }
        await WithinASecondAsync(InvokeOnOther, r => r.StatusCode == HttpStatusCode.OK, "release holds on the other replica");

        using (var update = new ByteArrayContent(PluginCatalogTests.Bundle(id, "1.1.0")))
        {
            Assert.AreEqual(HttpStatusCode.Created, (await api.PostAsync(new Uri("/internal/plugins", UriKind.Relative), update, Ct)).StatusCode);
        }
        using (await api.PostAsJsonAsync($"/internal/plugins/{id}/quarantine", new { version = "1.1.0", reason = "bad update", by = "admin-1" }, Ct))
        {
        }
        // Only the new version is quarantined: the other replica must have switched to it to be refused.
        await WithinASecondAsync(InvokeOnOther, r => r.StatusCode == HttpStatusCode.Locked, "the update reached the other replica");
    }

    private async Task WithinASecondAsync(Func<Task<HttpResponseMessage>> request, Func<HttpResponseMessage, bool> expected, string what)
    {
        await Poll.UntilAsync(async () =>
        {
            using var response = await request();
            return expected(response);
        }, TimeSpan.FromSeconds(1), what, Ct);
    }

    private static byte[] ZipBomb()
    {
        using var stream = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(stream, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        {
            zip.CreateEntry("manifest.json").Open().Dispose();
            using var wasm = zip.CreateEntry("plugin.wasm", System.IO.Compression.CompressionLevel.SmallestSize).Open();
            var zeros = new byte[1024 * 1024];
            for (var i = 0; i < 256; i++)
            {
                wasm.Write(zeros);
            }
        }
        return stream.ToArray();
    }
}
