using ClippyBot.Tuf;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using ClippyBot.Identity.Data;
using ClippyBot.Plugins.Bundles;
using ClippyBot.Registry.Data;
using ClippyBot.Tests.Api;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.PluginHost;
using ClippyBot.Tests.Rig;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using NSec.Cryptography;

namespace ClippyBot.Tests.Registry;

/// <summary>
/// Publisher onboarding against real Identity tokens: only a verified address with a second factor publishes; keys are
/// registered with proof of possession; namespaces are reverse-DNS, the platform's is reserved and none overlaps another
/// publisher's; a submission is checked and waits for review (never listed before); every refusal is recorded.
/// </summary>
[TestClass]
public sealed class RegistryPublisherTests
{
    private const string Scopes = "openid profile email offline_access api registry";
    private static ServiceFactory<IdentityDataContext> s_identity = null!;
    private static RegistryRig s_registry = null!;
    private static readonly string[] Reviewers = [.. Enumerable.Range(0, 6).Select(_ => OidcFlows.NewEmail())];
    private static readonly string Administrator = OidcFlows.NewEmail();

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        s_identity = await IdentityHost.StartAsync(context.CancellationToken, new Dictionary<string, string?>
        {
            ["Identity:PluginReviewers:0"] = Reviewers[0],
            ["Identity:PluginReviewers:1"] = Reviewers[1],
            ["Identity:PluginReviewers:2"] = Reviewers[2],
            ["Identity:PluginReviewers:3"] = Reviewers[3],
            ["Identity:PluginReviewers:4"] = Reviewers[4],
            ["Identity:PluginReviewers:5"] = Reviewers[5],
            ["Identity:Administrators:0"] = Administrator,
        });
        s_registry = await RegistryRig.StartAsync(context.CancellationToken,
            settings: new Dictionary<string, string?> { ["Identity:MetadataAddress"] = "https://localhost/.well-known/openid-configuration" },
            services: services => services.AddHttpClient(ClippyBot.ServiceDefaults.Authentication.IdentityAccessTokens.MetadataClient)
                .ConfigurePrimaryHttpMessageHandler(() => s_identity.Server.CreateHandler()));
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        await s_registry.DisposeAsync();
        await s_identity.DisposeAsync();
    }

    /// <summary>A registry client for a new person: verified, and (unless <paramref name="secondFactor"/> is false) signed in with TOTP.</summary>
    private async Task<HttpClient> PersonAsync(bool secondFactor = true, string? email = null)
    {
        email ??= OidcFlows.NewEmail();
        using (var browser = s_identity.Browser())
        {
            await OidcFlows.RegisterAsync(browser, email, OidcFlows.GoodPassword, Ct);
        }
        await s_identity.ConfirmEmailAsync(email);
        string access;
        using (var browser = s_identity.Browser())
        {
            if (secondFactor)
            {
                using (await OidcFlows.LoginAsync(browser, email, OidcFlows.GoodPassword, Ct))
                {
                }
                var (secret, _) = await AccountFlows.EnrolTwoFactorAsync(browser, TimeProvider.System, Ct);
                var tokens = await AccountFlows.SignInWithSecondFactorForTokensAsync(s_identity, email,
                    ClippyBot.Identity.Crypto.Totp.Compute(secret, DateTimeOffset.UtcNow.AddSeconds(30)), Ct, Scopes);
                access = tokens.GetProperty("access_token").GetString()!;
            }
            else
            {
                var pkce = OidcFlows.Pkce.Create();
                var code = await OidcFlows.SignInForCodeAsync(browser, email, OidcFlows.GoodPassword, pkce, Ct, scope: Scopes);
                access = (await OidcFlows.RedeemCodeAsync(s_identity.CreateClient(), code, pkce, Ct)).Body.GetProperty("access_token").GetString()!;
            }
        }
        var client = s_registry.Factory.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", access);
        return client;
    }

    private async Task<(string KeyId, byte[] Private)> ProveKeyAsync(HttpClient publisher, byte[]? signWith = null)
    {
        var (privateKey, publicKey) = PluginSigning.GenerateKey();
        using var challenge = await publisher.PostAsync(new Uri("/api/publishers/me/key-challenges", UriKind.Relative), null, Ct);
        Assert.AreEqual(HttpStatusCode.Created, challenge.StatusCode, await challenge.Content.ReadAsStringAsync(Ct));
        var body = await challenge.Content.ReadFromJsonAsync<JsonElement>(Ct);
        var me = await publisher.GetFromJsonAsync<JsonElement>(new Uri("/api/publishers/me", UriKind.Relative), Ct);
        var statement = ClippyBot.Registry.Publishers.PublisherEndpoints.ProofStatement(me.GetProperty("id").GetGuid(), body.GetProperty("challenge").GetString()!, Convert.ToBase64String(publicKey));
        using var key = Key.Import(SignatureAlgorithm.Ed25519, signWith ?? privateKey, KeyBlobFormat.RawPrivateKey);
        using var added = await publisher.PostAsJsonAsync(new Uri("/api/publishers/me/keys", UriKind.Relative), new
        {
            publicKey = Convert.ToBase64String(publicKey),
            challenge = body.GetProperty("challenge").GetString(),
            signature = Convert.ToBase64String(SignatureAlgorithm.Ed25519.Sign(key, Encoding.UTF8.GetBytes(statement))),
        }, Ct);
        return added.StatusCode == HttpStatusCode.Created ? (PluginSigning.KeyIdOf(publicKey), privateKey) : ("refused:" + await added.Content.ReadAsStringAsync(Ct), privateKey);
    }

    [TestMethod]
    public async Task A_verified_person_with_a_second_factor_proves_a_key_claims_a_namespace_and_submits_a_version_that_waits_for_review()
    {
        using (var withoutSecondFactor = await PersonAsync(secondFactor: false))
        {
            using var refused = await withoutSecondFactor.PostAsJsonAsync(new Uri("/api/publishers", UriKind.Relative), new { name = "NoMfa" }, Ct);
            Assert.AreEqual(HttpStatusCode.Forbidden, refused.StatusCode);
        }
        using (var anonymous = s_registry.Factory.CreateClient())
        {
            Assert.AreEqual(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri("/api/publishers/me", UriKind.Relative), Ct)).StatusCode);
        }

        using var acme = await PersonAsync();
        var name = "Acme " + Guid.NewGuid().ToString("N")[..6];
        using (var created = await acme.PostAsJsonAsync(new Uri("/api/publishers", UriKind.Relative), new { name }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, created.StatusCode, await created.Content.ReadAsStringAsync(Ct));
        }
        using (var again = await acme.PostAsJsonAsync(new Uri("/api/publishers", UriKind.Relative), new { name = name + "2" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Conflict, again.StatusCode);
        }

        var (keyId, privateKey) = await ProveKeyAsync(acme);
        Assert.HasCount(16, keyId, keyId);
        // Signed by another key than the one offered: no proof of possession.
        var (forged, _) = await ProveKeyAsync(acme, signWith: PluginSigning.GenerateKey().PrivateKey);
        StringAssert.Contains(forged, "key-proof-invalid");

        var space = "com.acme" + Guid.NewGuid().ToString("N")[..6];
        foreach (var (prefix, status) in new[] { (space, HttpStatusCode.Created), ("dev.clippybot.acme", HttpStatusCode.Conflict), ("dev.clippybot", HttpStatusCode.Conflict),
            ("com", HttpStatusCode.BadRequest), ("Com.Acme", HttpStatusCode.BadRequest), ("com..acme", HttpStatusCode.BadRequest), (new string('a', 5000) + ".com", HttpStatusCode.BadRequest) })
        {
            using var claimed = await acme.PostAsJsonAsync(new Uri("/api/publishers/me/namespaces", UriKind.Relative), new { prefix }, Ct);
            Assert.AreEqual(status, claimed.StatusCode, prefix.Length > 40 ? prefix[..40] : prefix);
        }
        // Another publisher cannot reach into it, nor claim a namespace that contains it.
        using (var other = await PersonAsync())
        {
            using (await other.PostAsJsonAsync(new Uri("/api/publishers", UriKind.Relative), new { name = "Other " + Guid.NewGuid().ToString("N")[..6] }, Ct))
            {
            }
            foreach (var prefix in new[] { space + ".tools", space })
            {
                using var overlapping = await other.PostAsJsonAsync(new Uri("/api/publishers/me/namespaces", UriKind.Relative), new { prefix }, Ct);
                Assert.AreEqual(HttpStatusCode.Conflict, overlapping.StatusCode, prefix);
            }
        }

        using (var submitted = await acme.PostAsync(new Uri("/api/publishers/me/submissions", UriKind.Relative),
            new ByteArrayContent(PluginCatalogTests.Bundle(space + ".hello", "1.0.0", key: privateKey)), Ct))
        {
            var body = await submitted.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.AreEqual(HttpStatusCode.Created, submitted.StatusCode, body.ToString());
            Assert.AreEqual("InReview", body.GetProperty("status").GetString());
            Assert.IsTrue(body.GetProperty("checks").EnumerateArray().All(c => c.GetProperty("passed").GetBoolean()));
        }
        using (var outside = await acme.PostAsync(new Uri("/api/publishers/me/submissions", UriKind.Relative),
            new ByteArrayContent(PluginCatalogTests.Bundle("org.elsewhere.hello", "1.0.0", key: privateKey)), Ct))
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, outside.StatusCode);
            var problem = await outside.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.AreEqual(ClippyBot.Contracts.ProblemTypes.SubmissionRejected, problem.GetProperty("type").GetString());
            Assert.IsFalse(problem.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("check").GetString() == "namespace").GetProperty("passed").GetBoolean());
        }
        // Waiting for review is not approved: targets do not list it.
        using (var http = s_registry.Factory.CreateClient())
        {
            var trusted = await s_registry.Client(new InMemoryTrustStore(), http).RefreshAsync(Ct);
            Assert.IsFalse(trusted.Targets.Targets.Keys.Any(k => k.StartsWith(space, StringComparison.Ordinal)));
        }

        using (var revoked = await acme.DeleteAsync(new Uri($"/api/publishers/me/keys/{keyId}", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, revoked.StatusCode);
        }
        using (var unknown = await acme.DeleteAsync(new Uri($"/api/publishers/me/keys/{keyId}", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.NotFound, unknown.StatusCode, "a revoked key is not revoked twice");
        }

        await using var scope = s_registry.Factory.Services.CreateAsyncScope();
        var audit = await scope.ServiceProvider.GetRequiredService<RegistryDbContext>().Audit.AsNoTracking().ToListAsync(Ct);
        foreach (var action in new[] { "authorization", "publisher.create", "key.add", "namespace.claim", "version.submit", "key.revoke" })
        {
            Assert.IsTrue(audit.Any(a => a.Action == action && a.Outcome == "refused"), $"a refused {action} is recorded");
        }
        Assert.IsTrue(audit.Any(a => a.Action == "key.add" && a.Outcome == "allowed" && a.Detail == keyId));
    }

    [TestMethod]
    public async Task Malformed_oversized_and_odd_requests_get_a_4xx_never_a_500()
    {
        using var person = await PersonAsync();
        using (await person.PostAsJsonAsync(new Uri("/api/publishers", UriKind.Relative), new { name = "Odd " + Guid.NewGuid().ToString("N")[..6] }, Ct))
        {
        }
        foreach (var (path, content) in new (string, HttpContent)[]
        {
            ("/api/publishers/me/keys", new StringContent("{\"publicKey\":", Encoding.UTF8, "application/json")),
            ("/api/publishers/me/keys", new StringContent("{\"publicKey\":12,\"challenge\":[],\"signature\":null}", Encoding.UTF8, "application/json")),
            ("/api/publishers/me/keys", JsonContent.Create(new { publicKey = "!!", challenge = new string('c', 10_000), signature = "??" })),
            ("/api/publishers/me/namespaces", new StringContent("[]", Encoding.UTF8, "application/json")),
            ("/api/publishers", new StringContent(new string('x', 2_000_000), Encoding.UTF8, "application/json")),
            ("/api/publishers/me/submissions", new ByteArrayContent(new byte[100])),
            ("/api/publishers/me/submissions", new ByteArrayContent([])),
        })
        {
            using var response = await person.PostAsync(new Uri(path, UriKind.Relative), content, Ct);
            Assert.IsTrue((int)response.StatusCode is >= 400 and < 500, $"{path}: {response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }
        using var oddKey = await person.DeleteAsync(new Uri("/api/publishers/me/keys/" + new string('k', 3000), UriKind.Relative), Ct);
        Assert.IsTrue((int)oddKey.StatusCode is >= 400 and < 500);
    }

    private async Task<(HttpClient Publisher, string Namespace, byte[] Key)> PublisherWithKeyAsync()
    {
        var publisher = await PersonAsync();
        using (await publisher.PostAsJsonAsync(new Uri("/api/publishers", UriKind.Relative), new { name = "P " + Guid.NewGuid().ToString("N")[..8] }, Ct))
        {
        }
        var (_, key) = await ProveKeyAsync(publisher);
        var space = "org.p" + Guid.NewGuid().ToString("N")[..8];
        using (var claimed = await publisher.PostAsJsonAsync(new Uri("/api/publishers/me/namespaces", UriKind.Relative), new { prefix = space }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, claimed.StatusCode);
        }
        return (publisher, space, key);
    }

    private async Task<Guid> SubmitAsync(HttpClient publisher, byte[] bundle)
    {
        using var submitted = await publisher.PostAsync(new Uri("/api/publishers/me/submissions", UriKind.Relative), new ByteArrayContent(bundle), Ct);
        var body = await submitted.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.AreEqual(HttpStatusCode.Created, submitted.StatusCode, body.ToString());
        return body.GetProperty("id").GetGuid();
    }

    private async Task<HttpResponseMessage> DecideAsync(HttpClient reviewer, Guid id, string decision, string note) =>
        await reviewer.PostAsJsonAsync(new Uri($"/api/reviews/{id}/decisions", UriKind.Relative), new { decision, note }, Ct);

    private async Task<bool> ListedAsync(string target)
    {
        using var http = s_registry.Factory.CreateClient();
        return (await s_registry.Client(new InMemoryTrustStore(), http).RefreshAsync(Ct)).Targets.Targets.ContainsKey(target);
    }

    [TestMethod]
    public async Task A_reviewer_approves_with_a_note_and_the_version_is_listed_sensitive_ones_need_two_different_reviewers_and_a_yank_withdraws_it()
    {
        var (publisher, space, key) = await PublisherWithKeyAsync();
        using var first = await PersonAsync(email: Reviewers[0]);
        using var second = await PersonAsync(email: Reviewers[1]);
        using var outsider = await PersonAsync();

        var plain = await SubmitAsync(publisher, PluginCatalogTests.Bundle(space + ".plain", "1.0.0", key: key));
        var queue = await first.GetFromJsonAsync<JsonElement>(new Uri("/api/reviews", UriKind.Relative), Ct);
        var entry = queue.EnumerateArray().Single(e => e.GetProperty("id").GetGuid() == plain);
        Assert.IsFalse(entry.GetProperty("needsTwoReviewers").GetBoolean());
        Assert.IsTrue(entry.GetProperty("checks").EnumerateArray().Any(c => c.GetProperty("check").GetString() == "risk"));
        Assert.AreEqual(HttpStatusCode.Forbidden, (await outsider.GetAsync(new Uri("/api/reviews", UriKind.Relative), Ct)).StatusCode, "reviewers only");
        using (var noNote = await DecideAsync(first, plain, "approve", " "))
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, noNote.StatusCode, "a note is required");
        }
        using (var approved = await DecideAsync(first, plain, "approve", "Looks fine."))
        {
            Assert.AreEqual("Approved", (await approved.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString());
        }
        Assert.IsTrue(await ListedAsync(space + ".plain/1.0.0.bundle"));
        var mine = await publisher.GetFromJsonAsync<JsonElement>(new Uri("/api/publishers/me/submissions", UriKind.Relative), Ct);
        Assert.AreEqual("Looks fine.", mine.EnumerateArray().Single(v => v.GetProperty("id").GetGuid() == plain).GetProperty("note").GetString(), "the publisher sees the note");

        // Four eyes: a version reading secrets needs a second, different reviewer.
        var sensitive = await SubmitAsync(publisher, PluginCatalogTests.Bundle(space + ".secrets", "1.0.0", key: key,
            permissions: """[{ "name": "secrets:read", "parameters": { "names": ["TOKEN"] } }]"""));
        using (var once = await DecideAsync(first, sensitive, "approve", "Reads only TOKEN."))
        {
            var body = await once.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.AreEqual("InReview", body.GetProperty("status").GetString());
            Assert.AreEqual(2, body.GetProperty("approvalsNeeded").GetInt32());
        }
        using (var twice = await DecideAsync(first, sensitive, "approve", "Again."))
        {
            Assert.AreEqual(HttpStatusCode.Conflict, twice.StatusCode, "the same reviewer does not count twice");
        }
        Assert.IsFalse(await ListedAsync(space + ".secrets/1.0.0.bundle"));
        using (var other = await DecideAsync(second, sensitive, "approve", "Agreed."))
        {
            Assert.AreEqual("Approved", (await other.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("status").GetString());
        }
        Assert.IsTrue(await ListedAsync(space + ".secrets/1.0.0.bundle"));

        var rejected = await SubmitAsync(publisher, PluginCatalogTests.Bundle(space + ".nope", "1.0.0", key: key));
        using (await DecideAsync(second, rejected, "reject", "Does nothing useful."))
        {
        }
        Assert.AreEqual("Does nothing useful.", (await publisher.GetFromJsonAsync<JsonElement>(new Uri("/api/publishers/me/submissions", UriKind.Relative), Ct))
            .EnumerateArray().Single(v => v.GetProperty("id").GetGuid() == rejected).GetProperty("note").GetString());

        using (var noReason = await first.PostAsJsonAsync(new Uri($"/api/versions/{plain}/yank", UriKind.Relative), new { reason = "" }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, noReason.StatusCode);
        }
        Assert.AreEqual(HttpStatusCode.Forbidden, (await outsider.PostAsJsonAsync(new Uri($"/api/versions/{plain}/yank", UriKind.Relative), new { reason = "x" }, Ct)).StatusCode);
        using (var yanked = await first.PostAsJsonAsync(new Uri($"/api/versions/{plain}/yank", UriKind.Relative), new { reason = "Leaks tokens." }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, yanked.StatusCode);
        }
        Assert.IsFalse(await ListedAsync(space + ".plain/1.0.0.bundle"));

        await using var scope = s_registry.Factory.Services.CreateAsyncScope();
        var audit = await scope.ServiceProvider.GetRequiredService<RegistryDbContext>().Audit.AsNoTracking().ToListAsync(Ct);
        Assert.IsTrue(audit.Any(a => a.Action == "review.decide" && a.Outcome == "refused"));
        Assert.IsTrue(audit.Any(a => a.Action == "review.decide" && a.Outcome == "allowed" && a.Detail.Contains("Agreed.", StringComparison.Ordinal)));
        Assert.IsTrue(audit.Any(a => a.Action == "version.yank" && a.Outcome == "allowed" && a.Detail.Contains("Leaks tokens.", StringComparison.Ordinal)));
        publisher.Dispose();
    }

    [TestMethod]
    public async Task A_reviewer_never_reviews_a_version_of_their_own()
    {
        using var reviewer = await PersonAsync(email: Reviewers[2]);
        using (await reviewer.PostAsJsonAsync(new Uri("/api/publishers", UriKind.Relative), new { name = "Reviewer's own " + Guid.NewGuid().ToString("N")[..6] }, Ct))
        {
        }
        var (_, key) = await ProveKeyAsync(reviewer);
        var space = "net.own" + Guid.NewGuid().ToString("N")[..8];
        using (await reviewer.PostAsJsonAsync(new Uri("/api/publishers/me/namespaces", UriKind.Relative), new { prefix = space }, Ct))
        {
        }
        var own = await SubmitAsync(reviewer, PluginCatalogTests.Bundle(space + ".x", "1.0.0", key: key));
        using var refused = await DecideAsync(reviewer, own, "approve", "Mine is great.");
        Assert.AreEqual(HttpStatusCode.Forbidden, refused.StatusCode);
    }

    [TestMethod]
    public async Task Tried_as_an_attacker_odd_paths_huge_or_wrong_typed_bodies_bursts_and_another_publishers_ids_get_a_4xx_never_a_500()
    {
        var (alice, _, _) = await PublisherWithKeyAsync();
        var (bob, _, _) = await PublisherWithKeyAsync();
        var bobsKey = (await bob.GetFromJsonAsync<JsonElement>(new Uri("/api/publishers/me", UriKind.Relative), Ct)).GetProperty("keys")[0].GetProperty("keyId").GetString();

        // Another publisher's key cannot be revoked, and the attempt is recorded.
        using (var foreign = await alice.DeleteAsync(new Uri($"/api/publishers/me/keys/{bobsKey}", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.NotFound, foreign.StatusCode);
        }
        Assert.AreEqual(1, (await bob.GetFromJsonAsync<JsonElement>(new Uri("/api/publishers/me", UriKind.Relative), Ct)).GetProperty("keys").EnumerateArray()
            .Count(k => k.GetProperty("revokedAt").ValueKind == JsonValueKind.Null), "Bob's key is untouched");

        // Odd spellings reach the same endpoints under the same rules.
        Assert.AreEqual(HttpStatusCode.OK, (await alice.GetAsync(new Uri("/API/Publishers/ME", UriKind.Relative), Ct)).StatusCode);
        Assert.AreEqual(HttpStatusCode.OK, (await alice.GetAsync(new Uri("/api/publishers/me/", UriKind.Relative), Ct)).StatusCode);
        using (var anonymous = s_registry.Factory.CreateClient())
        {
            foreach (var path in new[] { "/API/PUBLISHERS/ME", "/api/publishers/me/", "/api/reviews/", "/Api/Reviews" })
            {
                Assert.AreEqual(HttpStatusCode.Unauthorized, (await anonymous.GetAsync(new Uri(path, UriKind.Relative), Ct)).StatusCode, path);
            }
        }
        // A publisher is no reviewer, whatever the spelling.
        Assert.AreEqual(HttpStatusCode.Forbidden, (await alice.GetAsync(new Uri("/api/REVIEWS/", UriKind.Relative), Ct)).StatusCode);

        // The same new key offered by two publishers at once: one gets it, the other a 409 — never a 500.
        var (sharedPrivate, sharedPublic) = PluginSigning.GenerateKey();
        async Task<HttpStatusCode> OfferAsync(HttpClient publisher)
        {
            using var challenge = await publisher.PostAsync(new Uri("/api/publishers/me/key-challenges", UriKind.Relative), null, Ct);
            var body = await challenge.Content.ReadFromJsonAsync<JsonElement>(Ct);
            var id = (await publisher.GetFromJsonAsync<JsonElement>(new Uri("/api/publishers/me", UriKind.Relative), Ct)).GetProperty("id").GetGuid();
            var statement = ClippyBot.Registry.Publishers.PublisherEndpoints.ProofStatement(id, body.GetProperty("challenge").GetString()!, Convert.ToBase64String(sharedPublic));
            using var key = Key.Import(SignatureAlgorithm.Ed25519, sharedPrivate, KeyBlobFormat.RawPrivateKey);
            using var added = await publisher.PostAsJsonAsync(new Uri("/api/publishers/me/keys", UriKind.Relative), new
            {
                publicKey = Convert.ToBase64String(sharedPublic), challenge = body.GetProperty("challenge").GetString(),
                signature = Convert.ToBase64String(SignatureAlgorithm.Ed25519.Sign(key, Encoding.UTF8.GetBytes(statement))),
            }, Ct);
            return added.StatusCode;
        }
        var offers = await Task.WhenAll(Enumerable.Range(0, 6).Select(i => OfferAsync(i % 2 == 0 ? alice : bob)));
        Assert.AreEqual(1, offers.Count(o => o == HttpStatusCode.Created), string.Join(", ", offers));
        Assert.IsTrue(offers.All(o => o is HttpStatusCode.Created or HttpStatusCode.Conflict), string.Join(", ", offers));

        // Overlapping namespaces claimed by two publishers at the same moment (different prefixes: no unique key can
        // catch them): one gets its claim, never both — either would own the other's plugin ids.
        for (var round = 0; round < 4; round++)
        {
            var root = "com.race" + Guid.NewGuid().ToString("N")[..8];
            var claims = await Task.WhenAll(
                alice.PostAsJsonAsync(new Uri("/api/publishers/me/namespaces", UriKind.Relative), new { prefix = root }, Ct),
                bob.PostAsJsonAsync(new Uri("/api/publishers/me/namespaces", UriKind.Relative), new { prefix = root + ".tools" }, Ct));
            var codes = claims.Select(c => c.StatusCode).ToList();
            claims.ToList().ForEach(c => c.Dispose());
            Assert.AreEqual(1, codes.Count(c => c == HttpStatusCode.Created), string.Join(", ", codes));
            Assert.AreEqual(1, codes.Count(c => c == HttpStatusCode.Conflict), string.Join(", ", codes));
        }

        // A reviewer's wrong-typed, truncated or huge decisions and yanks are 4xx.
        using var reviewer = await PersonAsync(email: Reviewers[3]);
        var target = Guid.NewGuid();
        foreach (var (path, content) in new (string, HttpContent)[]
        {
            ($"/api/reviews/{target}/decisions", new StringContent("{\"decision\":", Encoding.UTF8, "application/json")),
            ($"/api/reviews/{target}/decisions", new StringContent("{\"decision\":[1],\"note\":{}}", Encoding.UTF8, "application/json")),
            ($"/api/reviews/{target}/decisions", JsonContent.Create(new { decision = "approve", note = new string('n', 900_000) })),
            ($"/api/reviews/{target}/decisions", JsonContent.Create(new { decision = "APPROVE", note = "x" })),
            ($"/api/reviews/{target}/decisions", JsonContent.Create(new { decision = "approve", note = "x" })),
            ($"/api/reviews/not-a-guid/decisions", JsonContent.Create(new { decision = "approve", note = "x" })),
            ($"/api/versions/{target}/yank", new StringContent("null", Encoding.UTF8, "application/json")),
            ($"/api/versions/{target}/yank", JsonContent.Create(new { reason = new string('r', 900_000) })),
            ($"/api/versions/{target}/yank", JsonContent.Create(new { reason = "gone" })),
        })
        {
            using var response = await reviewer.PostAsync(new Uri(path, UriKind.Relative), content, Ct);
            Assert.IsTrue((int)response.StatusCode is >= 400 and < 500, $"{path}: {response.StatusCode} {await response.Content.ReadAsStringAsync(Ct)}");
        }
        alice.Dispose();
        bob.Dispose();
    }

    [TestMethod]
    public async Task Two_reviewers_approving_a_four_eyes_version_at_the_same_moment_approve_it()
    {
        var (publisher, space, key) = await PublisherWithKeyAsync();
        var reviewers = new List<HttpClient>();
        foreach (var email in new[] { Reviewers[4], Reviewers[5] })
        {
            reviewers.Add(await PersonAsync(email: email));
        }
        for (var round = 0; round < 3; round++)
        {
            var id = await SubmitAsync(publisher, PluginCatalogTests.Bundle(space + ".burst" + round, "1.0.0", key: key,
                permissions: """[{ "name": "oauth:use", "parameters": { "providers": ["github"] } }]"""));
            var answers = await Task.WhenAll(reviewers.Select(r => DecideAsync(r, id, "approve", "Fine.")));
            Assert.IsTrue(answers.All(a => a.IsSuccessStatusCode), string.Join(", ", answers.Select(a => a.StatusCode)));
            Assert.IsTrue(await ListedAsync(space + ".burst" + round + "/1.0.0.bundle"), "two approvals, however close together, approve it");
        }
        reviewers.ForEach(r => r.Dispose());
        publisher.Dispose();
    }

    [TestMethod]
    public async Task The_audit_is_a_keyed_chain_the_database_refuses_to_change_and_an_entry_changed_behind_its_back_breaks_verification()
    {
        using (var publisher = await PersonAsync())
        using (await publisher.PostAsJsonAsync(new Uri("/api/publishers", UriKind.Relative), new { name = "Chain " + Guid.NewGuid().ToString("N")[..6] }, Ct))
        {
        }
        using var administrator = await PersonAsync(email: Administrator);
        using var reviewer = await PersonAsync();
        Assert.AreEqual(HttpStatusCode.Forbidden, (await reviewer.GetAsync(new Uri("/api/audit/verification", UriKind.Relative), Ct)).StatusCode, "administrators only (a person with a second factor but no role)");
        var verified = await administrator.GetFromJsonAsync<JsonElement>(new Uri("/api/audit/verification", UriKind.Relative), Ct);
        Assert.IsTrue(verified.GetProperty("holds").GetBoolean(), verified.ToString());
        Assert.IsGreaterThan(1L, verified.GetProperty("entries").GetInt64());

        await using var connection = new Npgsql.NpgsqlConnection(s_registry.Factory.Settings["ConnectionStrings:registrydb"]);
        await connection.OpenAsync(Ct);
        long victim;
        await using (var pick = new Npgsql.NpgsqlCommand("""SELECT "Id" FROM "Audit" WHERE "Keyed" ORDER BY "Id" LIMIT 1 OFFSET 1""", connection))
        {
            victim = (long)(await pick.ExecuteScalarAsync(Ct))!;
        }
        // The table refuses to change…
        await using (var update = new Npgsql.NpgsqlCommand($"""UPDATE "Audit" SET "Detail" = 'nothing happened' WHERE "Id" = {victim}""", connection))
        {
            await Assert.ThrowsAsync<Npgsql.PostgresException>(() => update.ExecuteNonQueryAsync(Ct));
        }
        // …and whoever forces it (a superuser switching triggers off) is caught by the chain.
        await using (var forced = new Npgsql.NpgsqlCommand($"""SET session_replication_role = replica; UPDATE "Audit" SET "Detail" = 'nothing happened' WHERE "Id" = {victim}; SET session_replication_role = origin;""", connection))
        {
            await forced.ExecuteNonQueryAsync(Ct);
        }
        var broken = await administrator.GetFromJsonAsync<JsonElement>(new Uri("/api/audit/verification", UriKind.Relative), Ct);
        Assert.IsFalse(broken.GetProperty("holds").GetBoolean());
        Assert.AreEqual(victim, broken.GetProperty("brokenAt").GetInt64());
        StringAssert.Contains(broken.GetProperty("reason").GetString(), "changed");
    }
}
