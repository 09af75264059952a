using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Tests.Identity;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

/// <summary>
/// Platform-wide operations (#22's dashboard commands): the AppHost's operator console calls them as a client-credentials
/// client with the <c>api.operations</c> scope; the Api accepts exactly the client named in <c>Operations:ClientId</c>,
/// and each action lands in the platform audit chain as that client and the person it names.
/// </summary>
[TestClass]
public sealed class OperationsTests
{
    private const string OperatorClient = "clippybot-operator";
    private const string ImpostorClient = "other-operator";
    private const string Secret = "operator-console-secret-for-tests-0123456789abcdefghijk";

    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        var identitySettings = new Dictionary<string, string?>();
        foreach (var (index, client) in new[] { (6, OperatorClient), (7, ImpostorClient) })
        {
            identitySettings[$"Oidc:Clients:{index}:ClientId"] = client;
            identitySettings[$"Oidc:Clients:{index}:ClientSecret"] = Secret;
            identitySettings[$"Oidc:Clients:{index}:GrantTypes:0"] = "client_credentials";
            identitySettings[$"Oidc:Clients:{index}:Scopes:0"] = "api.operations";
            identitySettings[$"Oidc:Clients:{index}:Scopes:1"] = "api";
        }
        s_testbed = await ApiTestbed.StartAsync(context.CancellationToken,
            apiSettings: new Dictionary<string, string?> { ["Operations:ClientId"] = OperatorClient }, identitySettings: identitySettings);
    }

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task The_operator_console_rotates_data_keys_and_verifies_every_chain_audited_as_the_person_running_it()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        await ApiTestbed.CreateWorkspaceAsync(owner.Client, "a workspace chain to verify", ct);
        using var console = await OperatorAsync(OperatorClient, "api.operations", ct);

        using var dataKeys = await console.PostAsync(new Uri("/api/admin/encryption/rotate", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.Accepted, dataKeys.StatusCode, await dataKeys.Content.ReadAsStringAsync(ct));

        using var verified = await console.GetAsync(new Uri("/api/admin/audit/verify-all", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, verified.StatusCode, await verified.Content.ReadAsStringAsync(ct));
        var verdict = await verified.Content.ReadFromJsonAsync<JsonElement>(ct);
        Assert.IsTrue(verdict.GetProperty("allIntact").GetBoolean(), verdict.ToString());
        Assert.IsGreaterThanOrEqualTo(2, verdict.GetProperty("chains").GetInt32(), "the platform chain and the workspace's");

        var audit = await PlatformAuditAsync(ct);
        foreach (var action in new[] { "encryption.key_rotated", "audit.chains_verified" })
        {
            Assert.IsTrue(audit.Any(e => e.GetProperty("action").GetString() == action && e.GetProperty("actorType").GetString() == "operator"
                                         && e.GetProperty("actorId").GetString() == $"{OperatorClient} for ops@machine-1"),
                $"{action} by the operator console for ops@machine-1 in {string.Join('\n', audit)}");
        }
    }

    [TestMethod]
    public async Task Rotating_signing_keys_signs_with_a_new_key_at_once_which_the_Api_accepts_on_first_sight_while_the_old_keys_stay_published()
    {
        var ct = TestContext.CancellationToken;
        var owner = await s_testbed.NewUserAsync(ct);
        using var console = await OperatorAsync(OperatorClient, "api.operations", ct);
        var kidsBefore = await SigningKeyIdsAsync(ct);

        using var signing = await console.PostAsync(new Uri("/api/admin/signing-keys/rotate", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.OK, signing.StatusCode, await signing.Content.ReadAsStringAsync(ct));
        var newKid = (await signing.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("keyId").GetString()!;
        Assert.IsFalse(kidsBefore.Contains(newKid), "a new key signs from now on");
        var kidsAfter = await SigningKeyIdsAsync(ct);
        Assert.IsTrue(kidsAfter.Contains(newKid) && kidsBefore.All(kidsAfter.Contains), "the old keys stay published for the tokens they signed");
        Assert.AreEqual(HttpStatusCode.OK, (await owner.Client.GetAsync(new Uri("/api/me", UriKind.Relative), ct)).StatusCode, "a token signed before still works");

        // A token signed with the new key is accepted on first sight: the Api fetches Identity's keys when it meets an
        // unknown one (before SigningKeyCatchUp and the fix of ValidatedTokenCache's lifetime rule it was refused for hours).
        using var afterRotation = await OperatorAsync(OperatorClient, "api.operations", ct);
        Assert.AreEqual(newKid, new Microsoft.IdentityModel.JsonWebTokens.JsonWebToken(afterRotation.DefaultRequestHeaders.Authorization!.Parameter).Kid);
        using var accepted = await afterRotation.GetAsync(new Uri("/api/me", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, accepted.StatusCode, await accepted.Content.ReadAsStringAsync(ct) + accepted.Headers.WwwAuthenticate);

        // Identity's own internal APIs accept the Api's next service token, signed with the new key (before: its token
        // validation kept the keys it started with, so the anchors could not be read and every chain looked unverifiable).
        s_testbed.Api.Services.GetRequiredService<ClippyBot.Api.ServiceClients.ServiceTokens>().Invalidate(ClippyBot.Api.Containment.IdentityServiceClient.AuditScope);
        using var verified = await afterRotation.GetAsync(new Uri("/api/admin/audit/verify-all", UriKind.Relative), ct);
        var verdict = await verified.Content.ReadFromJsonAsync<JsonElement>(ct);
        Assert.IsTrue(verdict.GetProperty("allIntact").GetBoolean(), verdict.ToString());

        // A key id Identity does not publish is refused without asking Identity again and again.
        var forged = afterRotation.DefaultRequestHeaders.Authorization!.Parameter!;
        var parts = forged.Split('.');
        var header = System.Text.Encoding.UTF8.GetString(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.DecodeBytes(parts[0])).Replace(newKid, "forged-key-id", StringComparison.Ordinal);
        using var forgedClient = s_testbed.Api.CreateClient();
        forgedClient.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", $"{Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(header)}.{parts[1]}.{parts[2]}");
        for (var i = 0; i < 5; i++)
        {
            using var refused = await forgedClient.GetAsync(new Uri("/api/me", UriKind.Relative), ct);
            Assert.AreEqual(HttpStatusCode.Unauthorized, refused.StatusCode);
        }

        Assert.IsTrue((await PlatformAuditAsync(ct)).Any(e => e.GetProperty("action").GetString() == "oidc.signing_keys_rotated"
                                                            && e.GetProperty("target").GetString() == newKid && e.GetProperty("actorType").GetString() == "operator"));
    }

    [TestMethod]
    public async Task Only_the_configured_operator_client_with_the_operations_scope_reaches_platform_operations()
    {
        var ct = TestContext.CancellationToken;
        // Another client that Identity gave the same scope, the operator client without it, and a person without the role.
        using var impostor = await OperatorAsync(ImpostorClient, "api.operations", ct);
        using var withoutScope = await OperatorAsync(OperatorClient, "api", ct);
        var person = await s_testbed.NewUserAsync(ct);
        foreach (var (caller, who) in new[] { (impostor, "another client with the scope"), (withoutScope, "the operator client without the scope"), (person.Client, "a person") })
        {
            foreach (var (method, path) in new[] { (HttpMethod.Post, "/api/admin/signing-keys/rotate"), (HttpMethod.Post, "/api/admin/quarantines/release"),
                         (HttpMethod.Get, "/api/admin/audit/verify-all"), (HttpMethod.Post, "/api/admin/encryption/rotate") })
            {
                using var response = await caller.SendAsync(new HttpRequestMessage(method, new Uri(path, UriKind.Relative)), ct);
                Assert.AreEqual(HttpStatusCode.Forbidden, response.StatusCode, $"{who}: {method} {path}");
            }
        }
        Assert.IsFalse((await PlatformAuditAsync(ct)).Any(e => e.GetProperty("actorId").GetString()!.StartsWith(ImpostorClient, StringComparison.Ordinal)
                                                             && e.GetProperty("outcome").GetString() == "success"));
        // Each refusal is a platform security event, recorded under the caller (odd spellings of the path included).
        using (var oddSpelling = await impostor.PostAsync(new Uri("/API/Admin/Quarantines/Release/", UriKind.Relative), new StringContent("{\"truncated\":", System.Text.Encoding.UTF8, "application/json"), ct))
        {
            Assert.AreEqual(HttpStatusCode.Forbidden, oddSpelling.StatusCode);
        }
        var denied = (await PlatformAuditAsync(ct)).Where(e => e.GetProperty("action").GetString() == "authorization.denied" && e.GetProperty("outcome").GetString() == "denied").ToList();
        Assert.IsTrue(denied.Any(e => e.GetProperty("actorId").GetString()!.StartsWith(ImpostorClient, StringComparison.Ordinal)
                                      && e.GetProperty("target").GetString()!.Contains("/api/admin/signing-keys/rotate", StringComparison.Ordinal)), string.Join('\n', denied));
        Assert.IsTrue(denied.Any(e => e.GetProperty("actorId").GetString() == person.Subject), "a person without the role");
        Assert.IsTrue(denied.Any(e => e.GetProperty("target").GetString()!.Contains("/API/Admin/Quarantines/Release/", StringComparison.Ordinal)));
    }

    [TestMethod]
    public async Task Releasing_every_quarantine_while_the_PluginHost_is_unreachable_is_a_503_problem_and_audited_as_failed()
    {
        var ct = TestContext.CancellationToken;
        using var console = await OperatorAsync(OperatorClient, "api.operations", ct);
        using var response = await console.PostAsync(new Uri("/api/admin/quarantines/release", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.ServiceUnavailable, response.StatusCode, await response.Content.ReadAsStringAsync(ct));
        Assert.AreEqual("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.IsTrue((await PlatformAuditAsync(ct)).Any(e => e.GetProperty("action").GetString() == "plugin.quarantines_released"
                                                            && e.GetProperty("outcome").GetString() == "failed" && e.GetProperty("actorType").GetString() == "operator"));
    }

    private static async Task<HttpClient> OperatorAsync(string clientId, string scope, CancellationToken ct)
    {
        var (status, body) = await OidcFlows.ClientCredentialsAsync(s_testbed.Identity.CreateClient(), clientId, Secret, ct, scope);
        Assert.AreEqual(HttpStatusCode.OK, status, body.ToString());
        var client = s_testbed.Api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", body.GetProperty("access_token").GetString());
        client.DefaultRequestHeaders.Add("X-ClippyBot-Operator", "ops@machine-1");
        return client;
    }

    private static async Task<HashSet<string>> SigningKeyIdsAsync(CancellationToken ct) =>
        [.. new Microsoft.IdentityModel.Tokens.JsonWebKeySet(await s_testbed.Identity.CreateClient().GetStringAsync(new Uri("/.well-known/jwks", UriKind.Relative), ct)).Keys
            .Where(k => k.Use == "sig").Select(k => k.Kid)];

    private static async Task<List<JsonElement>> PlatformAuditAsync(CancellationToken ct)
    {
        using var console = await OperatorAsync(OperatorClient, "api.operations", ct);
        var page = await console.GetFromJsonAsync<JsonElement>(new Uri("/api/admin/audit?pageSize=200", UriKind.Relative), ct);
        return [.. page.GetProperty("entries").EnumerateArray()];
    }
}
