using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ClippyBot.Tests.Api;

/// <summary>GDPR/CCPA: export of a person's data and erasure of their account, across Identity and the Api (docs/privacy.md).</summary>
[TestClass]
public sealed class PrivacyTests
{
    /// <summary>Every request reaches the Api from this documentation address (RFC 5737), so it can be searched for.</summary>
    private const string PeerAddress = "203.0.113.77";

    private static readonly ShiftedClock Clock = new();
    private static readonly IdentityOutage Outage = new();
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) =>
        s_testbed = await ApiTestbed.StartAsync(context.CancellationToken, services =>
        {
            services.AddSingleton<TimeProvider>(Clock);
            services.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter, FixedPeer>();
            services.AddHttpClient(ClippyBot.Api.Containment.IdentityServiceClient.HttpClientName).AddHttpMessageHandler(() => new OutageHandler(Outage));
        }, new Dictionary<string, string?> { ["Privacy:WorkerInterval"] = "00:00:01" });

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task An_export_holds_the_persons_data_from_Identity_and_the_Api_behind_a_mailed_link_that_expires()
    {
        var ct = TestContext.CancellationToken;
        var person = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(person.Client, "Exported", ct);
        var (_, apiKey) = await ApiTestbed.CreateApiKeyAsync(person.Client, workspaceId, ["dataRead"], null, ct);

        using var requested = await person.Client.PostAsync(new Uri("/api/me/exports", UriKind.Relative), null, ct);
        Assert.AreEqual(HttpStatusCode.Accepted, requested.StatusCode, await requested.Content.ReadAsStringAsync(ct));
        var exportId = (await requested.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("id").GetGuid();
        Assert.AreEqual($"/api/me/exports/{exportId}", requested.Headers.Location?.OriginalString);

        var mail = await TestRig.Smtp.WaitForAsync(person.Email, "data export is ready", ct);
        var link = TestSmtp.LinkIn(mail, $"/api/exports/{exportId}/download");
        using var anonymous = s_testbed.Api.CreateClient();
        using var download = await anonymous.GetAsync(new Uri(link.PathAndQuery, UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.OK, download.StatusCode, await download.Content.ReadAsStringAsync(ct));
        Assert.AreEqual("application/json", download.Content.Headers.ContentType?.MediaType);
        Assert.IsTrue(download.Headers.CacheControl?.NoStore, "a personal-data file is never cached");
        var text = await download.Content.ReadAsStringAsync(ct);
        using var document = JsonDocument.Parse(text);
        var root = document.RootElement;

        Assert.AreEqual("https://clippybot.dev/schemas/personal-data-export", root.GetProperty("schema").GetString());
        Assert.AreEqual(1, root.GetProperty("version").GetInt32());
        Assert.AreEqual(person.Subject, root.GetProperty("subject").GetString());
        var account = root.GetProperty("identity").GetProperty("account");
        Assert.AreEqual(person.Email, account.GetProperty("email").GetString());
        Assert.IsTrue(account.GetProperty("emailConfirmed").GetBoolean());
        Assert.IsTrue(root.GetProperty("identity").GetProperty("sessions").GetArrayLength() >= 1, "the login that made the token is a session");
        var api = root.GetProperty("api");
        var membership = api.GetProperty("memberships").EnumerateArray().Single();
        Assert.AreEqual(workspaceId, membership.GetProperty("workspaceId").GetGuid());
        Assert.AreEqual("owner", membership.GetProperty("role").GetString());
        Assert.AreEqual("ci", api.GetProperty("apiKeysCreated").EnumerateArray().Single().GetProperty("name").GetString());
        var created = api.GetProperty("auditEvents").EnumerateArray().Single(e => e.GetProperty("action").GetString() == "workspace.created");
        Assert.AreEqual(PeerAddress, created.GetProperty("ipAddress").GetString(), "the person's own addresses are theirs to see");
        // Credentials are never part of an export.
        StringAssert.DoesNotMatch(text, new System.Text.RegularExpressions.Regex(@"\$argon2id|" + System.Text.RegularExpressions.Regex.Escape(apiKey)));

        // The owner also gets it with their token; nobody else does, and a wrong link token looks like no export at all.
        using var mine = await person.Client.GetAsync(new Uri($"/api/me/exports/{exportId}/download", UriKind.Relative), ct);
        Assert.AreEqual(text, await mine.Content.ReadAsStringAsync(ct));
        var stranger = await s_testbed.NewUserAsync(ct);
        Assert.AreEqual(HttpStatusCode.NotFound, (await stranger.Client.GetAsync(new Uri($"/api/me/exports/{exportId}", UriKind.Relative), ct)).StatusCode);
        Assert.AreEqual(HttpStatusCode.NotFound, (await anonymous.GetAsync(new Uri($"/api/exports/{exportId}/download?token=wrong", UriKind.Relative), ct)).StatusCode);
        var status = await person.Client.GetFromJsonAsync<JsonElement>(new Uri($"/api/me/exports/{exportId}", UriKind.Relative), ct);
        Assert.AreEqual("ready", status.GetProperty("status").GetString());
        var expiresAt = status.GetProperty("expiresAt").GetDateTimeOffset();
        Assert.AreEqual(TimeSpan.FromHours(24), expiresAt - status.GetProperty("completedAt").GetDateTimeOffset());

        // A day later the link is dead and the worker deletes the document.
        Clock.Advance(TimeSpan.FromHours(25));
        try
        {
            using var late = await anonymous.GetAsync(new Uri(link.PathAndQuery, UriKind.Relative), ct);
            Assert.AreEqual(HttpStatusCode.Gone, late.StatusCode, await late.Content.ReadAsStringAsync(ct));
            await Poll.UntilAsync(async () => await ScalarAsync<bool>(s_testbed.Api, "apidb",
                    $"SELECT \"Status\" = 'expired' AND \"Payload\" IS NULL FROM \"DataExports\" WHERE \"Id\" = '{exportId}'", ct),
                TimeSpan.FromSeconds(30), "expired export deleted", ct);
        }
        finally
        {
            Clock.Advance(TimeSpan.FromHours(-25));
        }
    }

    [TestMethod]
    public async Task An_access_token_the_Api_remembers_is_refused_once_the_Apis_clock_passes_its_expiry()
    {
        var ct = TestContext.CancellationToken;
        var person = await s_testbed.NewUserAsync(ct);
        for (var i = 0; i < 2; i++)
        {
            using var fresh = await person.Client.GetAsync(new Uri("/api/me", UriKind.Relative), ct);
            Assert.AreEqual(HttpStatusCode.OK, fresh.StatusCode, "validated, then answered from the validation cache");
        }
        // Access tokens live 15 minutes (30 s of skew): 16 minutes later by the Api's clock, the remembered token is dead.
        Clock.Advance(TimeSpan.FromMinutes(16));
        try
        {
            using var late = await person.Client.GetAsync(new Uri("/api/me", UriKind.Relative), ct);
            Assert.AreEqual(HttpStatusCode.Unauthorized, late.StatusCode);
        }
        finally
        {
            Clock.Advance(TimeSpan.FromMinutes(-16));
        }
    }

    [TestMethod]
    public async Task Audit_verification_without_identitys_anchors_is_never_reported_intact()
    {
        var ct = TestContext.CancellationToken;
        var person = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(person.Client, "Anchored", ct);
        var verified = await person.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
        Assert.IsTrue(verified.GetProperty("intact").GetBoolean(), verified.ToString());

        Outage.Down = true;
        try
        {
            // A truncated or wholly rewritten chain cannot be ruled out without the anchors: not "intact", and why.
            var unverified = await person.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
            Assert.IsFalse(unverified.GetProperty("intact").GetBoolean(), unverified.ToString());
            StringAssert.Contains(unverified.GetProperty("reason").GetString(), "anchors");
            Assert.AreEqual(JsonValueKind.Null, unverified.GetProperty("anchorsChecked").ValueKind);
        }
        finally
        {
            Outage.Down = false;
        }
    }

    [TestMethod]
    public async Task An_API_key_cannot_export_or_erase_a_person()
    {
        var ct = TestContext.CancellationToken;
        var person = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(person.Client, "Keyed", ct);
        var (_, apiKey) = await ApiTestbed.CreateApiKeyAsync(person.Client, workspaceId, ["dataRead"], null, ct);
        using var key = s_testbed.KeyClient(apiKey);
        Assert.AreEqual(HttpStatusCode.Forbidden, (await key.PostAsync(new Uri("/api/me/exports", UriKind.Relative), null, ct)).StatusCode);
        using var erase = await key.SendJsonAsync(HttpMethod.Delete, "/api/me", new { confirmEmail = person.Email }, ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, erase.StatusCode);
    }

    [TestMethod]
    public async Task Erasure_waits_for_sole_ownership_to_end_then_removes_the_person_everywhere_and_shreds_their_audit_addresses()
    {
        var ct = TestContext.CancellationToken;
        var person = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(person.Client, "Handed over", ct);
        var colleague = await s_testbed.JoinAsync(person.Client, workspaceId, "admin", ct);

        using (var unconfirmed = await person.Client.SendJsonAsync(HttpMethod.Delete, "/api/me", new { confirmEmail = "someone@else.example" }, ct))
        {
            Assert.AreEqual(HttpStatusCode.BadRequest, unconfirmed.StatusCode);
        }
        using (var owner = await person.Client.SendJsonAsync(HttpMethod.Delete, "/api/me", new { confirmEmail = person.Email }, ct))
        {
            Assert.AreEqual(HttpStatusCode.Conflict, owner.StatusCode);
            var problem = await owner.Content.ReadFromJsonAsync<JsonElement>(ct);
            Assert.AreEqual("https://clippybot.dev/problems/sole-owner", problem.GetProperty("type").GetString());
            Assert.AreEqual(workspaceId, problem.GetProperty("workspaces")[0].GetProperty("id").GetGuid());
        }
        Assert.AreEqual(HttpStatusCode.OK, (await person.Client.GetAsync(new Uri($"/api/workspaces/{workspaceId}", UriKind.Relative), ct)).StatusCode, "a refused erasure changes nothing");
        using (var promote = await person.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/members/{colleague.Subject}", new { role = "owner" }, ct))
        {
            Assert.AreEqual(HttpStatusCode.OK, promote.StatusCode);
        }
        var before = await AuditOfPersonAsync(colleague.Client, workspaceId, person.Subject, ct);
        Assert.IsTrue(before.All(e => e.GetProperty("ipAddress").GetString() == PeerAddress), "addresses readable while the person exists");
        // What a backup of apidb holds of the person's addresses: ciphertext only (its key lives in subjectkeysdb).
        Assert.AreEqual(0L, await ScalarAsync<long>(s_testbed.Api, "apidb",
            $"SELECT count(*) FROM \"AuditEntries\" WHERE \"ActorId\" = '{person.Subject}' AND (\"IpAddress\" <> '' OR \"IpSealed\" IS NULL)", ct));

        using (var erased = await person.Client.SendJsonAsync(HttpMethod.Delete, "/api/me", new { confirmEmail = person.Email.ToUpperInvariant() }, ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, erased.StatusCode, await erased.Content.ReadAsStringAsync(ct));
        }

        Assert.AreEqual(HttpStatusCode.Unauthorized, (await person.Client.GetAsync(new Uri("/api/me", UriKind.Relative), ct)).StatusCode, "their tokens die at once");
        var members = await colleague.Client.GetFromJsonAsync<JsonElement>(new Uri($"/api/workspaces/{workspaceId}/members", UriKind.Relative), ct);
        Assert.IsFalse(members.EnumerateArray().Any(m => m.GetProperty("userId").GetString() == person.Subject));
        var after = await AuditOfPersonAsync(colleague.Client, workspaceId, person.Subject, ct);
        Assert.AreEqual(before.Count, after.Count, "audit entries stay, under the pseudonymous subject");
        Assert.IsTrue(after.All(e => e.GetProperty("ipAddress").GetString() == ""), "their addresses are unreadable");
        var verify = await colleague.Client.GetFromJsonAsync<JsonElement>(new Uri($"/api/workspaces/{workspaceId}/audit/verify", UriKind.Relative), ct);
        Assert.IsTrue(verify.GetProperty("intact").GetBoolean(), "the chain hashes ciphertext, so it still verifies");
        Assert.IsTrue(await ScalarAsync<bool>(s_testbed.Api, "subjectkeysdb",
            $"SELECT \"WrappedKey\" IS NULL AND \"ShreddedAt\" IS NOT NULL FROM \"SubjectKeys\" WHERE \"SubjectId\" = '{person.Subject}'", ct), "the key is destroyed");
        Assert.AreEqual(0L, await ScalarAsync<long>(s_testbed.Identity, "identitydb",
            $"SELECT count(*) FROM \"AspNetUsers\" WHERE \"Id\" = '{person.Subject}'", ct), "Identity deleted the account");
        foreach (var (name, factory) in new[] { ("identitydb", (object)s_testbed.Identity), ("apidb", s_testbed.Api), ("subjectkeysdb", s_testbed.Api) })
        {
            var settings = factory is ServiceFactory<ClippyBot.Identity.Data.IdentityDataContext> i ? i.Settings : ((ServiceFactory<ClippyBot.Api.Data.ApiDbContext>)factory).Settings;
            var dump = await TestRig.Postgres.DumpAsync(settings[$"ConnectionStrings:{name}"]!, ct);
            Assert.IsFalse(dump.Contains(person.Email, StringComparison.OrdinalIgnoreCase), $"{name} no longer holds the address");
        }
        // The account is gone: signing in gets the generic failure, as for any unknown address.
        using var browser = s_testbed.Identity.Browser();
        StringAssert.Contains(await OidcFlowsLoginAsync(browser, person.Email, ct),
            System.Text.Encodings.Web.HtmlEncoder.Default.Encode(ClippyBot.Identity.Pages.Account.LoginModel.GenericFailure));
    }

    [TestMethod]
    public async Task An_erasure_Identity_cannot_take_now_stands_in_the_Api_and_is_finished_by_the_worker()
    {
        var ct = TestContext.CancellationToken;
        var person = await s_testbed.NewUserAsync(ct);
        Outage.Down = true;
        try
        {
            using var erased = await person.Client.SendJsonAsync(HttpMethod.Delete, "/api/me", new { confirmEmail = person.Email }, ct);
            Assert.AreEqual(HttpStatusCode.Accepted, erased.StatusCode, await erased.Content.ReadAsStringAsync(ct));
            Assert.AreEqual("identity-pending", (await erased.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("status").GetString());
            Assert.AreEqual(HttpStatusCode.Unauthorized, (await person.Client.GetAsync(new Uri("/api/me", UriKind.Relative), ct)).StatusCode,
                "the Api's own marker ends the person's tokens while Identity is away");
            Assert.AreEqual(1L, await ScalarAsync<long>(s_testbed.Identity, "identitydb", $"SELECT count(*) FROM \"AspNetUsers\" WHERE \"Id\" = '{person.Subject}'", ct));
        }
        finally
        {
            Outage.Down = false;
        }
        await Poll.UntilAsync(async () => await ScalarAsync<long>(s_testbed.Identity, "identitydb",
            $"SELECT count(*) FROM \"AspNetUsers\" WHERE \"Id\" = '{person.Subject}'", ct) == 0, TimeSpan.FromSeconds(60), "worker finished the erasure", ct);
        await Poll.UntilAsync(async () => await ScalarAsync<bool>(s_testbed.Api, "apidb",
            $"SELECT \"CompletedAt\" IS NOT NULL FROM \"AccountErasures\" WHERE \"SubjectId\" = '{person.Subject}'", ct), TimeSpan.FromSeconds(30), "erasure recorded complete", ct);
    }

    [TestMethod]
    public async Task A_key_of_an_erased_person_restored_from_an_older_backup_is_shredded_again_when_the_Api_starts()
    {
        var ct = TestContext.CancellationToken;
        var person = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(person.Client, "Short-lived", ct);
        // The other way out of sole ownership: the workspace goes first.
        using (var deleted = await person.Client.SendJsonAsync(HttpMethod.Delete, $"/api/workspaces/{workspaceId}", new { confirmName = "Short-lived" }, ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        var keys = s_testbed.Api.Settings["ConnectionStrings:subjectkeysdb"]!;
        var backedUp = await ScalarAsync<byte[]>(keys, $"SELECT \"WrappedKey\" FROM \"SubjectKeys\" WHERE \"SubjectId\" = '{person.Subject}'", ct);
        using (var erased = await person.Client.SendJsonAsync(HttpMethod.Delete, "/api/me", new { confirmEmail = person.Email }, ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, erased.StatusCode);
        }

        // subjectkeysdb restored from a backup taken before the erasure, apidb from a later one.
        await using (var connection = new NpgsqlConnection(keys))
        {
            await connection.OpenAsync(ct);
            await using var restore = new NpgsqlCommand("UPDATE \"SubjectKeys\" SET \"WrappedKey\" = @key, \"ShreddedAt\" = NULL WHERE \"SubjectId\" = @subject", connection);
            restore.Parameters.AddWithValue("key", backedUp);
            restore.Parameters.AddWithValue("subject", person.Subject);
            Assert.AreEqual(1, await restore.ExecuteNonQueryAsync(ct));
        }
        await using var restarted = await ApiHost.StartReplicaAsync(s_testbed.Identity, s_testbed.Api, ct);
        await Poll.UntilAsync(async () => await ScalarAsync<bool>(keys,
                $"SELECT \"WrappedKey\" IS NULL FROM \"SubjectKeys\" WHERE \"SubjectId\" = '{person.Subject}'", ct),
            TimeSpan.FromSeconds(30), "restored key shredded again", ct);
    }

    private static async Task<List<JsonElement>> AuditOfPersonAsync(HttpClient reader, Guid workspaceId, string subject, CancellationToken ct)
    {
        var page = await reader.GetFromJsonAsync<JsonElement>(new Uri($"/api/workspaces/{workspaceId}/audit?actorId={subject}&pageSize=200", UriKind.Relative), ct);
        var entries = page.GetProperty("entries").EnumerateArray().ToList();
        Assert.IsTrue(entries.Count >= 2, "workspace.created, invitation.created and more by the person");
        return entries;
    }

    private static async Task<string> OidcFlowsLoginAsync(HttpClient browser, string email, CancellationToken ct)
    {
        using var response = await OidcFlows.LoginAsync(browser, email, OidcFlows.GoodPassword, ct);
        return await response.Content.ReadAsStringAsync(ct);
    }

    private static async Task<T> ScalarAsync<T>(ServiceFactory<ClippyBot.Identity.Data.IdentityDataContext> factory, string database, string sql, CancellationToken ct) =>
        await ScalarAsync<T>(factory.Settings[$"ConnectionStrings:{database}"]!, sql, ct);

    private static async Task<T> ScalarAsync<T>(ServiceFactory<ClippyBot.Api.Data.ApiDbContext> factory, string database, string sql, CancellationToken ct) =>
        await ScalarAsync<T>(factory.Settings[$"ConnectionStrings:{database}"]!, sql, ct);

    internal static async Task<T> ScalarAsync<T>(string connectionString, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(ct))!;
    }

    /// <summary>Every request to the Api comes from <see cref="PeerAddress"/>.</summary>
    private sealed class FixedPeer : Microsoft.AspNetCore.Hosting.IStartupFilter
    {
        public Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> Configure(Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                context.Connection.RemoteIpAddress = IPAddress.Parse(PeerAddress);
                return nextMiddleware(context);
            });
            next(app);
        };
    }

    private sealed class IdentityOutage
    {
        public volatile bool Down;
    }

    /// <summary>Identity as the Api's service client sees it during an outage: no connection.</summary>
    private sealed class OutageHandler(IdentityOutage outage) : DelegatingHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            outage.Down ? throw new HttpRequestException("Connection refused (test outage)") : base.SendAsync(request, cancellationToken);
    }
}
