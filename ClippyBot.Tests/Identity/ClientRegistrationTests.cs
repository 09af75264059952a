using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using static ClippyBot.Tests.Identity.AppFlows;
using static ClippyBot.Tests.Identity.OidcFlows;

namespace ClippyBot.Tests.Identity;

/// <summary>
/// Apps are data: developers register them on their page or by RFC 7591/7592, with one set of rules; secrets are shown
/// once, stored as keyed hashes, rotated with a grace period; deleting or suspending an app ends its tokens at once on
/// every replica; nobody reaches another developer's app. Real Identity replicas, PostgreSQL, Redis-protocol server, SMTP.
/// </summary>
[TestClass]
public sealed class ClientRegistrationTests
{
    private static ServiceFactory<IdentityDataContext> s_identity = null!;
    private static ServiceFactory<IdentityDataContext> s_replica = null!;
    private static readonly string AdminEmail = NewEmail();

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        s_identity = await IdentityHost.StartAsync(context.CancellationToken, new Dictionary<string, string?>
        {
            ["Apps:SecretRotationGrace"] = "00:00:03",
            ["Identity:Administrators:0"] = AdminEmail,
        });
        s_replica = await IdentityHost.StartReplicaAsync(s_identity, new Dictionary<string, string?>(), context.CancellationToken);
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        await s_replica.DisposeAsync();
        await s_identity.DisposeAsync();
    }

    [TestMethod]
    public async Task A_public_app_registered_on_the_page_signs_a_person_in_with_code_PKCE_and_refresh_rotation_through_the_consent_page()
    {
        var (developer, _) = await NewDeveloperAsync(s_identity, Ct);
        using (developer)
        {
            var (html, clientId, secret) = await CreateAppAsync(developer,
                Fields("Pocket planner", "spa", ["authorization_code", "refresh_token"], ["https://planner.example/callback"], ["openid", "profile", "offline_access", "api"]), Ct);
            Assert.IsNotNull(clientId, html);
            Assert.IsNull(secret, "a public app has no secret");

            // Another person signs in to it: sign-in, the consent page, the code, tokens, a rotated refresh token.
            using var person = s_identity.Browser();
            var email = NewEmail();
            await RegisterAsync(person, email, GoodPassword, Ct);
            await s_identity.ConfirmEmailAsync(email);
            using (await LoginAsync(person, email, GoodPassword, Ct))
            {
            }
            var pkce = Pkce.Create();
            var authorize = AuthorizeUrl(pkce, "st", "https://planner.example/callback", scope: "openid profile offline_access api", clientId: clientId!);
            using var consentPage = await person.GetAsync(new Uri(authorize, UriKind.Relative), Ct);
            var consentHtml = await consentPage.Content.ReadAsStringAsync(Ct);
            StringAssert.Contains(consentHtml, "Pocket planner");
            StringAssert.Contains(consentHtml, "Use ClippyBot&#x27;s API as you");
            using var allowed = await AnswerConsentAsync(person, consentPage, "allow", Ct);
            Assert.AreEqual(HttpStatusCode.Redirect, allowed.StatusCode, await allowed.Content.ReadAsStringAsync(Ct));
            var query = QueryHelpers.ParseQuery(allowed.Headers.Location!.Query);
            var (status, tokens) = await RedeemCodeAsync(s_identity.CreateClient(), query["code"].ToString(), pkce, Ct, clientId!, "https://planner.example/callback");
            Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
            var refresh = tokens.GetProperty("refresh_token").GetString()!;
            var (refreshed, next) = await TokenAsync(s_replica.CreateClient(), new Dictionary<string, string>
            {
                ["grant_type"] = "refresh_token", ["client_id"] = clientId!, ["refresh_token"] = refresh,
            }, Ct);
            Assert.AreEqual(HttpStatusCode.OK, refreshed, next.ToString());
            Assert.AreNotEqual(refresh, next.GetProperty("refresh_token").GetString(), "the refresh token rotates");

            // Deleted by its developer: the person's refresh token stops working at once.
            using var deleted = await PostPageAsync(developer, "/developers/apps/" + clientId, "Delete", [new("confirm", "true")], Ct);
            var (afterDelete, _) = await TokenAsync(s_identity.CreateClient(), new Dictionary<string, string>
            {
                ["grant_type"] = "refresh_token", ["client_id"] = clientId!, ["refresh_token"] = next.GetProperty("refresh_token").GetString()!,
            }, Ct);
            Assert.AreEqual(HttpStatusCode.Unauthorized, afterDelete, "a deleted app is an unknown client (invalid_client)");
        }
    }

    [TestMethod]
    public async Task A_registered_confidential_app_introspects_and_revokes_its_own_tokens_as_a_configured_client_does()
    {
        var (developer, _) = await NewDeveloperAsync(s_identity, Ct, twoFactor: true);
        using (developer)
        {
            var (_, id, secret) = await CreateAppAsync(developer,
                Fields("Server app", "server", ["authorization_code", "refresh_token"], ["https://server.example/cb"], ["openid", "offline_access", "api"]), Ct);
            using var person = s_identity.Browser();
            var email = NewEmail();
            await RegisterAsync(person, email, GoodPassword, Ct);
            await s_identity.ConfirmEmailAsync(email);
            using (await LoginAsync(person, email, GoodPassword, Ct))
            {
            }
            var pkce = Pkce.Create();
            using var page = await person.GetAsync(new Uri(AuthorizeUrl(pkce, "s", "https://server.example/cb", scope: "openid offline_access api", clientId: id!), UriKind.Relative), Ct);
            using var allowed = await AnswerConsentAsync(person, page, "allow", Ct);
            var code = QueryHelpers.ParseQuery(allowed.Headers.Location!.Query)["code"].ToString();
            var (status, tokens) = await TokenAsync(s_identity.CreateClient(), new Dictionary<string, string>
            {
                ["grant_type"] = "authorization_code", ["client_id"] = id!, ["client_secret"] = secret!, ["code"] = code,
                ["redirect_uri"] = "https://server.example/cb", ["code_verifier"] = pkce.Verifier,
            }, Ct);
            Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
            var refresh = tokens.GetProperty("refresh_token").GetString()!;
            Dictionary<string, string> As(string token) => new() { ["token"] = token, ["client_id"] = id!, ["client_secret"] = secret! };
            using (var introspected = await s_identity.CreateClient().PostAsync(new Uri("/connect/introspect", UriKind.Relative), new FormUrlEncodedContent(As(refresh)), Ct))
            {
                Assert.IsTrue((await introspected.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("active").GetBoolean(), "its own refresh token is active");
            }
            using (var revoked = await s_identity.CreateClient().PostAsync(new Uri("/connect/revoke", UriKind.Relative), new FormUrlEncodedContent(As(refresh)), Ct))
            {
                Assert.AreEqual(HttpStatusCode.OK, revoked.StatusCode);
            }
            using (var after = await s_identity.CreateClient().PostAsync(new Uri("/connect/introspect", UriKind.Relative), new FormUrlEncodedContent(As(refresh)), Ct))
            {
                Assert.IsFalse((await after.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("active").GetBoolean(), "revoked");
            }
            var (refused, _) = await TokenAsync(s_identity.CreateClient(), new Dictionary<string, string>
            {
                ["grant_type"] = "refresh_token", ["client_id"] = id!, ["client_secret"] = secret!, ["refresh_token"] = refresh,
            }, Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, refused);
        }
    }

    [TestMethod]
    public async Task Each_bad_field_is_refused_with_its_own_error_nothing_is_registered_and_the_refusal_is_recorded()
    {
        var (developer, email) = await NewDeveloperAsync(s_identity, Ct);
        using (developer)
        {
            var cases = new (List<KeyValuePair<string, string>> Fields, string Field, string Says)[]
            {
                (Fields("", "spa", ["authorization_code"], ["https://ok.example/cb"], ["openid"]), "client_name", "name"),
                (Fields("Wild", "spa", ["authorization_code"], ["https://*.example/cb"], ["openid"]), "redirect_uris", "wildcards"),
                (Fields("Plain", "spa", ["authorization_code"], ["http://app.example/cb"], ["openid"]), "redirect_uris", "https"),
                (Fields("Frag", "spa", ["authorization_code"], ["https://app.example/cb#x"], ["openid"]), "redirect_uris", "fragment"),
                (Fields("Native", "native", ["authorization_code"], ["http://localhost:8080/cb"], ["openid"]), "redirect_uris", "loopback IP literal"),
                (Fields("Implicit", "spa", ["implicit"], ["https://app.example/cb"], ["openid"]), "grant_types", "no implicit"),
                (Fields("Public cc", "spa", ["client_credentials"], [], ["api"]), "grant_types", "confidential"),
                (Fields("Internal", "spa", ["authorization_code"], ["https://app.example/cb"], ["pluginhost"]), "scope", "scopes an app may use"),
                (Fields(new string('n', 101), "spa", ["authorization_code"], ["https://app.example/cb"], ["openid"]), "client_name", "at most 100"),
                (Fields("Huge", "spa", ["authorization_code"], [.. Enumerable.Range(0, 11).Select(i => $"https://app.example/{i}")], ["openid"]), "redirect_uris", "At most 10"),
            };
            foreach (var (fields, field, says) in cases)
            {
                var (html, clientId, _) = await CreateAppAsync(developer, fields, Ct);
                Assert.IsNull(clientId, $"{field} case was registered");
                StringAssert.Contains(ErrorOf(html, field), says, $"{field}: {ErrorOf(html, field)}");
            }
            await using var scope = s_identity.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
            var user = await db.Users.SingleAsync(u => u.Email == email, Ct);
            Assert.AreEqual(0, await db.RegisteredApps.CountAsync(a => a.OwnerId == user.Id, Ct));
            Assert.AreEqual(cases.Length, await db.AppAuditEntries.CountAsync(e => e.ActorId == user.Id && e.Outcome == "refused", Ct), "every refusal is recorded");
        }
    }

    [TestMethod]
    public async Task A_confidential_app_needs_two_factor_its_secret_is_shown_once_stored_as_a_keyed_hash_and_works_with_basic_and_post()
    {
        var server = Fields("Nightly sync", "server", ["client_credentials"], [], ["api"]);
        var (plain, _) = await NewDeveloperAsync(s_identity, Ct);
        using (plain)
        {
            var (html, clientId, _) = await CreateAppAsync(plain, server, Ct);
            Assert.IsNull(clientId);
            StringAssert.Contains(ErrorOf(html, "token_endpoint_auth_method"), "two-factor");
        }
        var (developer, _) = await NewDeveloperAsync(s_identity, Ct, twoFactor: true);
        using (developer)
        {
            var (_, id, secret) = await CreateAppAsync(developer, server, Ct);
            Assert.IsNotNull(id);
            Assert.IsNotNull(secret);
            using var again = await developer.GetAsync(new Uri("/developers/apps/" + id, UriKind.Relative), Ct);
            Assert.IsFalse((await again.Content.ReadAsStringAsync(Ct)).Contains(secret, StringComparison.Ordinal), "shown once");
            await using (var scope = s_identity.Services.CreateAsyncScope())
            {
                var stored = await scope.ServiceProvider.GetRequiredService<IdentityDataContext>().Set<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication>()
                    .Where(a => a.ClientId == id).Select(a => a.ClientSecret).SingleAsync(Ct);
                StringAssert.StartsWith(stored, "hmac-sha256$");
                Assert.IsFalse(stored!.Contains(secret, StringComparison.Ordinal));
            }
            var (post, postBody) = await ClientCredentialsAsync(s_identity.CreateClient(), id!, secret!, Ct, scope: "api");
            Assert.AreEqual(HttpStatusCode.OK, post, postBody.ToString());
            Assert.AreEqual(id, DecodeJwt(postBody.GetProperty("access_token").GetString()!).Payload.GetProperty("sub").GetString());
            using var basic = s_identity.CreateClient();
            basic.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes($"{id}:{secret}")));
            var (basicStatus, basicBody) = await TokenAsync(basic, new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["scope"] = "api" }, Ct);
            Assert.AreEqual(HttpStatusCode.OK, basicStatus, basicBody.ToString());
            var (internalScope, _) = await ClientCredentialsAsync(s_identity.CreateClient(), id!, secret!, Ct, scope: "pluginhost");
            Assert.AreEqual(HttpStatusCode.BadRequest, internalScope, "an app never gets the platform's internal scopes");
        }
    }

    [TestMethod]
    public async Task A_rotated_secret_works_beside_the_new_one_for_the_grace_period_then_only_the_new_one_does()
    {
        var (developer, _) = await NewDeveloperAsync(s_identity, Ct, twoFactor: true);
        using (developer)
        {
            var (_, id, old) = await CreateAppAsync(developer, Fields("Rotating", "server", ["client_credentials"], [], ["api"]), Ct);
            // Cached on the other replica before the rotation.
            Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(s_replica.CreateClient(), id!, old!, Ct, scope: "api")).Status);
            using var rotated = await PostPageAsync(developer, "/developers/apps/" + id, "Rotate", [], Ct);
            var fresh = SecretOnPage().Match(await rotated.Content.ReadAsStringAsync(Ct)).Groups[1].Value;
            Assert.AreNotEqual("", fresh);
            foreach (var replica in new[] { s_identity, s_replica })
            {
                Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(replica.CreateClient(), id!, fresh, Ct, scope: "api")).Status, "the new secret, everywhere at once");
                Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(replica.CreateClient(), id!, old!, Ct, scope: "api")).Status, "the old one, during the grace period");
            }
            await Poll.UntilAsync(async () => (await ClientCredentialsAsync(s_replica.CreateClient(), id!, old!, Ct, scope: "api")).Status != HttpStatusCode.OK,
                TimeSpan.FromSeconds(30), "the previous secret refused after its grace period", Ct);
            Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(s_replica.CreateClient(), id!, fresh, Ct, scope: "api")).Status);
        }
    }

    [TestMethod]
    public async Task Deleting_an_app_refuses_it_on_every_replica_within_a_second_and_marks_its_access_tokens_revoked_for_resource_servers()
    {
        var (developer, _) = await NewDeveloperAsync(s_identity, Ct, twoFactor: true);
        using (developer)
        {
            var (_, id, secret) = await CreateAppAsync(developer, Fields("Short-lived", "server", ["client_credentials"], [], ["api"]), Ct);
            Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(s_replica.CreateClient(), id!, secret!, Ct, scope: "api")).Status);
            using var deleted = await PostPageAsync(developer, "/developers/apps/" + id, "Delete", [new("confirm", "true")], Ct);
            Assert.AreEqual(HttpStatusCode.Redirect, deleted.StatusCode);
            // The replica had it cached: the announcement, not the cache's 30 s, ends it.
            await Poll.UntilAsync(async () => (await ClientCredentialsAsync(s_replica.CreateClient(), id!, secret!, Ct, scope: "api")).Status != HttpStatusCode.OK,
                TimeSpan.FromSeconds(1), "the deleted app refused on the other replica", Ct);
            await using var redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
            Assert.IsTrue(await redis.GetDatabase().KeyExistsAsync(ClippyBot.Contracts.RevocationKeys.RevokedBefore(id!)), "resource servers refuse its access tokens");
            using var page = await developer.GetAsync(new Uri("/developers/apps/" + id, UriKind.Relative), Ct);
            Assert.AreEqual(HttpStatusCode.NotFound, page.StatusCode);
        }
    }

    [TestMethod]
    public async Task Another_developers_app_is_not_found_on_any_page_and_the_attempt_is_recorded()
    {
        var (owner, _) = await NewDeveloperAsync(s_identity, Ct, twoFactor: true);
        var (intruder, intruderEmail) = await NewDeveloperAsync(s_identity, Ct, twoFactor: true);
        using (owner)
        using (intruder)
        {
            var (_, id, secret) = await CreateAppAsync(owner, Fields("Mine", "server", ["client_credentials"], [], ["api"]), Ct);
            using var look = await intruder.GetAsync(new Uri("/developers/apps/" + id, UriKind.Relative), Ct);
            Assert.AreEqual(HttpStatusCode.NotFound, look.StatusCode);
            // A form posted with the intruder's own anti-forgery token, to the owner's app.
            using var ownPage = await intruder.GetAsync(new Uri("/developers/apps", UriKind.Relative), Ct);
            var antiforgery = System.Text.RegularExpressions.Regex.Match(await ownPage.Content.ReadAsStringAsync(Ct), "name=\"__RequestVerificationToken\" type=\"hidden\" value=\"([^\"]+)\"").Groups[1].Value;
            foreach (var handler in new[] { "Rotate", "Delete" })
            {
                using var content = new FormUrlEncodedContent([new("__RequestVerificationToken", WebUtility.HtmlDecode(antiforgery)), new("confirm", "true")]);
                using var attempt = await intruder.PostAsync(new Uri($"/developers/apps/{id}?handler={handler}", UriKind.Relative), content, Ct);
                Assert.AreEqual(HttpStatusCode.NotFound, attempt.StatusCode, handler);
            }
            Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(s_identity.CreateClient(), id!, secret!, Ct, scope: "api")).Status, "untouched");
            await using var scope = s_identity.Services.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
            var intruderId = (await db.Users.SingleAsync(u => u.Email == intruderEmail, Ct)).Id;
            Assert.IsTrue(await db.AppAuditEntries.CountAsync(e => e.ActorId == intruderId && e.ClientId == id && e.Outcome == "refused", Ct) >= 3);
        }
    }

    [TestMethod]
    public async Task RFC_7591_registers_once_per_initial_access_token_and_RFC_7592_reads_replaces_and_deletes_with_the_registration_token()
    {
        var (developer, developerEmail) = await NewDeveloperAsync(s_identity, Ct, twoFactor: true);
        using (developer)
        {
            using var made = await PostPageAsync(developer, "/developers/apps", "InitialAccessToken", [], Ct);
            var initial = System.Text.RegularExpressions.Regex.Match(await made.Content.ReadAsStringAsync(Ct), "<code data-initial-access-token>([^<]+)</code>").Groups[1].Value;
            Assert.AreNotEqual("", initial);
            var metadata = new
            {
                client_name = "CI deployer",
                token_endpoint_auth_method = "client_secret_post",
                grant_types = new[] { "client_credentials" },
                scope = "api",
            };
            using var anonymous = s_identity.CreateClient();
            using (var refused = await anonymous.PostAsJsonAsync("/connect/register", metadata, Ct))
            {
                Assert.AreEqual(HttpStatusCode.Unauthorized, refused.StatusCode);
                StringAssert.Contains(refused.Headers.WwwAuthenticate.ToString(), "invalid_token");
            }
            using var automation = s_identity.CreateClient();
            automation.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", initial);
            using (var invalid = await automation.PostAsJsonAsync("/connect/register", new { client_name = "x", redirect_uris = new[] { "https://*.example/cb" } }, Ct))
            {
                Assert.AreEqual(HttpStatusCode.BadRequest, invalid.StatusCode);
                var error = await invalid.Content.ReadFromJsonAsync<JsonElement>(Ct);
                Assert.AreEqual("invalid_redirect_uri", error.GetProperty("error").GetString());
                StringAssert.Contains(error.GetProperty("error_description").GetString(), "redirect_uris");
            }
            using (var malformed = await automation.PostAsync("/connect/register", new StringContent("{\"grant_types\": 7", System.Text.Encoding.UTF8, "application/json"), Ct))
            {
                Assert.AreEqual(HttpStatusCode.BadRequest, malformed.StatusCode, "never a 500");
                Assert.AreEqual("invalid_client_metadata", (await malformed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("error").GetString());
            }
            using var registered = await automation.PostAsJsonAsync("/connect/register", metadata, Ct);
            Assert.AreEqual(HttpStatusCode.Created, registered.StatusCode, await registered.Content.ReadAsStringAsync(Ct));
            var document = await registered.Content.ReadFromJsonAsync<JsonElement>(Ct);
            var id = document.GetProperty("client_id").GetString()!;
            var secret = document.GetProperty("client_secret").GetString()!;
            var registrationToken = document.GetProperty("registration_access_token").GetString()!;
            Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(s_identity.CreateClient(), id, secret, Ct, scope: "api")).Status);
            using (var twice = await automation.PostAsJsonAsync("/connect/register", metadata, Ct))
            {
                Assert.AreEqual(HttpStatusCode.Unauthorized, twice.StatusCode, "an initial access token registers one app");
            }

            var uri = new Uri(document.GetProperty("registration_client_uri").GetString()!).PathAndQuery;
            using var manager = s_identity.CreateClient();
            manager.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", registrationToken);
            Assert.AreEqual("CI deployer", (await manager.GetFromJsonAsync<JsonElement>(uri, Ct)).GetProperty("client_name").GetString());
            using (var wrong = s_identity.CreateClient())
            {
                wrong.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", initial);
                Assert.AreEqual(HttpStatusCode.Unauthorized, (await wrong.GetAsync(new Uri(uri, UriKind.Relative), Ct)).StatusCode);
            }
            // The developer's account is locked (taken over?): their registration token no longer speaks for them.
            await using (var scope = s_identity.Services.CreateAsyncScope())
            {
                var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<ClippyBot.Identity.Accounts.ApplicationUser>>();
                var owner = (await users.FindByEmailAsync(developerEmail))!;
                await users.SetLockoutEndDateAsync(owner, DateTimeOffset.UtcNow.AddHours(1));
                Assert.AreEqual(HttpStatusCode.Forbidden, (await manager.GetAsync(new Uri(uri, UriKind.Relative), Ct)).StatusCode);
                await users.SetLockoutEndDateAsync(owner, null);
            }
            using (var replaced = await manager.PutAsJsonAsync(uri, metadata with { }, Ct))
            {
                Assert.AreEqual(HttpStatusCode.OK, replaced.StatusCode, await replaced.Content.ReadAsStringAsync(Ct));
            }
            using (var renamed = await manager.PutAsJsonAsync(uri, new { client_name = "CI deployer 2", token_endpoint_auth_method = "client_secret_post", grant_types = new[] { "client_credentials" }, scope = "api" }, Ct))
            {
                Assert.AreEqual("CI deployer 2", (await renamed.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("client_name").GetString());
            }
            using (var toPublic = await manager.PutAsJsonAsync(uri, new { client_name = "x", token_endpoint_auth_method = "none", redirect_uris = new[] { "https://a.example/cb" } }, Ct))
            {
                Assert.AreEqual(HttpStatusCode.BadRequest, toPublic.StatusCode, "an app's type stays");
            }
            using (var gone = await manager.DeleteAsync(new Uri(uri, UriKind.Relative), Ct))
            {
                Assert.AreEqual(HttpStatusCode.NoContent, gone.StatusCode);
            }
            await Poll.UntilAsync(async () => (await ClientCredentialsAsync(s_replica.CreateClient(), id, secret, Ct, scope: "api")).Status != HttpStatusCode.OK,
                TimeSpan.FromSeconds(1), "deleted through RFC 7592", Ct);
            Assert.AreEqual(HttpStatusCode.Unauthorized, (await manager.GetAsync(new Uri(uri, UriKind.Relative), Ct)).StatusCode);
        }
    }

    [TestMethod]
    public async Task A_configured_client_an_administrator_suspended_stays_suspended_and_Identity_still_starts()
    {
        await using (var scope = s_identity.Services.CreateAsyncScope())
        {
            Assert.IsTrue(await scope.ServiceProvider.GetRequiredService<ClippyBot.Identity.Apps.AppRegistry>().SuspendAsync(Guid.NewGuid(), IdentityHost.ThirdPartyClient, "Under review", Ct));
        }
        try
        {
            // A restart (a deploy) seeds the configured clients again: it failed before (the suspended client was "not
            // found", so the seeder created it again and the duplicate stopped the host).
            await using var restarted = await IdentityHost.StartReplicaAsync(s_identity, new Dictionary<string, string?>(), Ct);
            await using var scope = restarted.Services.CreateAsyncScope();
            var view = await scope.ServiceProvider.GetRequiredService<ClippyBot.Identity.Apps.AppRegistry>().ViewAsync(IdentityHost.ThirdPartyClient, Ct);
            Assert.AreEqual("suspended", view!.Disabled);
        }
        finally
        {
            await using var scope = s_identity.Services.CreateAsyncScope();
            await scope.ServiceProvider.GetRequiredService<ClippyBot.Identity.Apps.AppRegistry>().ResumeAsync(Guid.NewGuid(), IdentityHost.ThirdPartyClient, Ct);
        }
    }

    [TestMethod]
    public async Task An_administrator_suspends_an_app_with_a_reason_on_the_admin_page_it_is_refused_at_once_and_comes_back_when_resumed()
    {
        var (developer, _) = await NewDeveloperAsync(s_identity, Ct, twoFactor: true);
        using var admin = s_identity.Browser();
        await RegisterAsync(admin, AdminEmail, GoodPassword, Ct);
        await s_identity.ConfirmEmailAsync(AdminEmail);
        await AccountFlows.SignInWithSecondFactorAsync(admin, AdminEmail, Ct);
        using (developer)
        {
            var (_, id, secret) = await CreateAppAsync(developer, Fields("Suspicious", "server", ["client_credentials"], [], ["api"]), Ct);
            Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(s_replica.CreateClient(), id!, secret!, Ct, scope: "api")).Status);
            var list = await admin.GetStringAsync(new Uri("/admin/apps", UriKind.Relative), Ct);
            StringAssert.Contains(list, id!);
            StringAssert.Contains(list, IdentityHost.WebClient, "configured clients are listed too");

            using (var noReason = await PostPageAsync(admin, "/admin/apps", "Suspend", [new("clientId", id!), new("reason", " ")], Ct))
            {
                StringAssert.Contains(await noReason.Content.ReadAsStringAsync(Ct), "needs a reason");
            }
            Assert.AreEqual(HttpStatusCode.OK, (await ClientCredentialsAsync(s_identity.CreateClient(), id!, secret!, Ct, scope: "api")).Status, "not suspended without a reason");
            using (var suspended = await PostPageAsync(admin, "/admin/apps", "Suspend", [new("clientId", id!), new("reason", "Phishing reports")], Ct))
            {
                StringAssert.Contains(await suspended.Content.ReadAsStringAsync(Ct), "Suspended");
            }
            await Poll.UntilAsync(async () => (await ClientCredentialsAsync(s_replica.CreateClient(), id!, secret!, Ct, scope: "api")).Status != HttpStatusCode.OK,
                TimeSpan.FromSeconds(1), "suspended on the other replica", Ct);
            await using var redis = await ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
            Assert.IsTrue(await redis.GetDatabase().KeyExistsAsync(ClippyBot.Contracts.RevocationKeys.RevokedBefore(id!)), "its outstanding tokens are refused");
            StringAssert.Contains(await developer.GetStringAsync(new Uri("/developers/apps/" + id, UriKind.Relative), Ct), "suspended: Phishing reports");

            using (var firstParty = await PostPageAsync(admin, "/admin/apps", "FirstParty", [new("clientId", id!), new("firstParty", "true")], Ct))
            {
                Assert.AreEqual(HttpStatusCode.OK, firstParty.StatusCode);
            }
            using (var resumed = await PostPageAsync(admin, "/admin/apps", "Resume", [new("clientId", id!)], Ct))
            {
                StringAssert.Contains(await resumed.Content.ReadAsStringAsync(Ct), "Resumed");
            }
            await Poll.UntilAsync(async () => (await ClientCredentialsAsync(s_replica.CreateClient(), id!, secret!, Ct, scope: "api")).Status == HttpStatusCode.OK,
                TimeSpan.FromSeconds(1), "resumed on the other replica", Ct);
            await using (var scope = s_identity.Services.CreateAsyncScope())
            {
                var db = scope.ServiceProvider.GetRequiredService<IdentityDataContext>();
                Assert.IsTrue(await db.RegisteredApps.Where(a => a.ClientId == id).Select(a => a.FirstParty).SingleAsync(Ct));
                var actions = await db.AppAuditEntries.Where(e => e.ClientId == id).Select(e => e.Action + ":" + e.Outcome).ToListAsync(Ct);
                CollectionAssert.IsSubsetOf(new[] { "app.suspend:refused", "app.suspended:success", "app.first-party:success", "app.resumed:success" }, actions);
            }
            // Developers are not administrators.
            using var adminPage = await developer.GetAsync(new Uri("/admin/apps", UriKind.Relative), Ct);
            Assert.AreNotEqual(HttpStatusCode.OK, adminPage.StatusCode);

            // An administrator signed in with two factors through a registered app — even one marked first-party — gives
            // it no administrator role; ClippyBot's own configured app gets it (failed before: any app with "api" did).
            var (_, publicId, _) = await CreateAppAsync(developer, Fields("Admin bait", "spa", ["authorization_code"], ["https://bait.example/cb"], ["openid", "api"]), Ct);
            using (await PostPageAsync(admin, "/admin/apps", "FirstParty", [new("clientId", publicId!), new("firstParty", "true")], Ct))
            {
            }
            foreach (var (client, redirect, admitted) in new[] { (publicId!, "https://bait.example/cb", false), (IdentityHost.DevClient, IdentityHost.WebRedirect, true) })
            {
                var pkce = Pkce.Create();
                using var authorized = await admin.GetAsync(new Uri(AuthorizeUrl(pkce, "a", redirect, scope: "openid api", clientId: client), UriKind.Relative), Ct);
                Assert.AreEqual(HttpStatusCode.Redirect, authorized.StatusCode, await authorized.Content.ReadAsStringAsync(Ct));
                var (_, adminTokens) = await RedeemCodeAsync(s_identity.CreateClient(), QueryHelpers.ParseQuery(authorized.Headers.Location!.Query)["code"].ToString(), pkce, Ct, client, redirect);
                var payload = DecodeJwt(adminTokens.GetProperty("access_token").GetString()!).Payload;
                Assert.AreEqual(admitted, payload.TryGetProperty("role", out var role) && role.ToString().Contains("platform-admin", StringComparison.Ordinal), client);
            }
        }
    }
}
