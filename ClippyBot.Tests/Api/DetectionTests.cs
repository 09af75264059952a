using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Api.Detection;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

/// <summary>
/// #23 detection: the default alert rules (thresholds lowered by configuration, as an operator would tune them) fire on
/// generated attack traffic against real Identity and Api instances — once per episode, one mail to the administrators —
/// and stay quiet on normal traffic. Rounds are run on demand (<see cref="AlertEvaluator.EvaluateAsync"/>) where a test
/// asserts that nothing fired; the background rounds (every second here) are what the replica test relies on.
/// </summary>
[TestClass]
public sealed class DetectionTests
{
    private const string MetricsClient = "prometheus-scraper";
    private const string MetricsSecret = "prometheus-scraper-secret-for-tests-0123456789abcdefg";
    private static readonly string AdminEmail = OidcFlows.NewEmail();
    private static readonly string SecondAdminEmail = OidcFlows.NewEmail();
    private static readonly ShiftedClock ApiClock = new();
    private static ApiTestbed s_testbed = null!;
    private static HttpClient s_admin = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context)
    {
        var ct = context.CancellationToken;
        var identitySettings = new Dictionary<string, string?>
        {
            ["Identity:Administrators:0"] = AdminEmail,
            ["Identity:Administrators:1"] = SecondAdminEmail,
            ["LoginThrottle:MaxAttemptsPerWindow"] = "1000",
            ["TokenThrottle:MaxFailuresPerWindow"] = "3",
            ["Oidc:Clients:6:ClientId"] = MetricsClient,
            ["Oidc:Clients:6:ClientSecret"] = MetricsSecret,
            ["Oidc:Clients:6:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:6:Scopes:0"] = "api.metrics",
        };
        var apiSettings = new Dictionary<string, string?>
        {
            ["Detection:EvaluationInterval"] = "00:00:01",
            ["Detection:PublicBaseUrl"] = "https://api.clippybot.test",
            ["Detection:Rules:sign-in-failures:Threshold"] = "5",
            ["Detection:Rules:account-sign-in-failures:Threshold"] = "2",
            ["Detection:Rules:rate-limit-refusals:Threshold"] = "3",
            ["Detection:Rules:mass-key-revocations:Threshold"] = "2",
            ["Detection:Rules:mass-key-revocations:WindowMinutes"] = "2",
            ["Detection:Rules:mass-key-revocations:QuietMinutes"] = "1",
            ["Detection:Rules:mass-role-changes:Threshold"] = "2",
            ["Detection:Rules:mass-erasures:Threshold"] = "1",
            ["RateLimits:KeyPrefix"] = "test-detect-" + Guid.NewGuid().ToString("N"),
            ["RateLimits:Anonymous:PermitLimit"] = "5",
            ["RateLimits:Anonymous:Window"] = "00:10:00",
            ["RateLimits:Sensitive:PermitLimit"] = "1000",
        };
        s_testbed = await ApiTestbed.StartAsync(ct, apiServices: services => services.AddSingleton<TimeProvider>(ApiClock), apiSettings: apiSettings,
            identitySettings: identitySettings, identityServices: services => services.AddSingleton<IStartupFilter>(new AbuseTests.AddressFromHeader()));
        s_admin = await ApiHost.NewAdministratorAsync(s_testbed.Identity, s_testbed.Api, AdminEmail, ct);
        // A second administrator, verified, who never turned on a second factor.
        (await s_testbed.NewUserAsync(ct, email: SecondAdminEmail)).Client.Dispose();
    }

    [ClassCleanup]
    public static async Task StopAsync()
    {
        s_admin.Dispose();
        await s_testbed.DisposeAsync();
    }

    [TestMethod]
    public async Task Failed_sign_ins_against_one_account_open_one_alert_per_episode_and_the_administrators_get_one_mail()
    {
        var victim = await s_testbed.NewUserAsync(Ct);
        // Normal traffic: one mistyped password, then the right one.
        using (var browser = AbuseTests.From(s_testbed.Identity.Browser(), AbuseTests.NewAddress()))
        {
            (await OidcFlows.LoginAsync(browser, victim.Email, "a mistyped password 1", Ct)).Dispose();
            (await OidcFlows.LoginAsync(browser, victim.Email, OidcFlows.GoodPassword, Ct)).Dispose();
        }
        await EvaluateAsync();
        Assert.IsEmpty(await AlertsAsync("account-sign-in-failures", victim.Subject), "one mistyped password is not an attack");

        var attacker = AbuseTests.NewAddress();
        using (var browser = AbuseTests.From(s_testbed.Identity.Browser(), attacker))
        {
            for (var i = 0; i < 4; i++)
            {
                (await OidcFlows.LoginAsync(browser, victim.Email, $"guess {i}", Ct)).Dispose();
            }
        }
        await EvaluateAsync();
        var alert = (await AlertsAsync("account-sign-in-failures", victim.Subject)).Single();
        Assert.AreEqual("firing", alert.GetProperty("status").GetString());
        Assert.AreEqual("medium", alert.GetProperty("severity").GetString());

        // The attack goes on: the same episode, counted, never a second alert or mail.
        using (var browser = AbuseTests.From(s_testbed.Identity.Browser(), attacker))
        {
            (await OidcFlows.LoginAsync(browser, victim.Email, "guess 5", Ct)).Dispose();
            (await OidcFlows.LoginAsync(browser, victim.Email, "guess 6", Ct)).Dispose();
        }
        await EvaluateAsync();
        await EvaluateAsync();
        var same = (await AlertsAsync("account-sign-in-failures", victim.Subject)).Single();
        Assert.AreEqual(alert.GetProperty("id").GetGuid(), same.GetProperty("id").GetGuid());
        Assert.IsGreaterThanOrEqualTo(6, same.GetProperty("count").GetInt64(), same.ToString());

        var detail = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/alerts/{same.GetProperty("id").GetGuid()}", Ct);
        Assert.IsTrue(detail.GetProperty("samples").EnumerateArray().Any(s => s.GetProperty("detail").GetString()!.Contains(attacker.ToString(), StringComparison.Ordinal)),
            "the samples show where the guesses came from: " + detail);
        Assert.IsFalse(Enumerable.Range(0, 7).Any(i => detail.ToString().Contains($"guess {i}", StringComparison.Ordinal)), "never the guessed passwords");

        // One digest per round for the round's new alerts, the most severe first.
        var mail = await Poll.UntilAsync(async () => (await TestRig.Smtp.MessagesToAsync(AdminEmail, Ct))
            .FirstOrDefault(m => m.Text.Contains(victim.Subject, StringComparison.Ordinal)), TimeSpan.FromSeconds(30), "the administrators' digest", Ct);
        StringAssert.StartsWith(mail.Subject, "[medium] ClippyBot security alert");
        StringAssert.Contains(mail.Text, "account-sign-in-failures");
        StringAssert.Contains(mail.Text, $"https://api.clippybot.test/api/admin/alerts/{same.GetProperty("id").GetGuid()}");
        await EvaluateAsync();
        Assert.HasCount(1, (await TestRig.Smtp.MessagesToAsync(AdminEmail, Ct)).Where(m => m.Text.Contains(victim.Subject, StringComparison.Ordinal)).ToList());
        Assert.HasCount(1, (await TestRig.Smtp.MessagesToAsync(SecondAdminEmail, Ct)).Where(m => m.Text.Contains(victim.Subject, StringComparison.Ordinal)).ToList(),
            "every administrator with a verified address is told");

        // Platform-wide: seven failures in five minutes is above this deployment's threshold of five.
        Assert.HasCount(1, await AlertsAsync("sign-in-failures", SecurityAlert.PlatformSubject));

        // The person erases their account: the alert keeps its rule, counts and times, never their id or the addresses again.
        using (var erased = await victim.Client.SendJsonAsync(HttpMethod.Delete, "/api/me", new { confirmEmail = victim.Email }, Ct))
        {
            Assert.IsTrue(erased.IsSuccessStatusCode, await erased.Content.ReadAsStringAsync(Ct));
        }
        await EvaluateAsync();
        Assert.IsEmpty(await AlertsAsync("account-sign-in-failures", victim.Subject));
        var scrubbed = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/alerts/{same.GetProperty("id").GetGuid()}", Ct);
        Assert.AreEqual(0, scrubbed.GetProperty("samples").GetArrayLength());
        StringAssert.StartsWith(scrubbed.GetProperty("alert").GetProperty("subject").GetString(), "(erased account ");
        Assert.DoesNotContain(victim.Subject, (await s_admin.GetStringAsync(new Uri("/api/admin/alerts?pageSize=200", UriKind.Relative), Ct)));
    }

    [TestMethod]
    public async Task An_address_blocked_at_the_token_endpoint_fires_once_and_a_good_client_fires_nothing()
    {
        using (var good = AbuseTests.From(s_testbed.Identity.CreateClient(), AbuseTests.NewAddress()))
        {
            var (status, body) = await OidcFlows.ClientCredentialsAsync(good, IdentityHost.ServiceClient, IdentityHost.ServiceSecret, Ct);
            Assert.AreEqual(HttpStatusCode.OK, status, body.ToString());
        }
        var guesser = AbuseTests.NewAddress();
        using var client = AbuseTests.From(s_testbed.Identity.CreateClient(), guesser);
        for (var i = 0; i < 5; i++)
        {
            await OidcFlows.ClientCredentialsAsync(client, IdentityHost.ServiceClient, $"wrong secret {i}", Ct);
        }
        await EvaluateAsync();
        await EvaluateAsync();
        var alerts = (await AlertsAsync("token-throttle-blocks", null)).ToList();
        Assert.HasCount(1, alerts, string.Join('\n', alerts));
        StringAssert.Contains(alerts[0].GetProperty("subject").GetString(), guesser.ToString());
    }

    [TestMethod]
    public async Task A_caller_kept_at_the_rate_limit_fires_and_a_caller_within_it_does_not()
    {
        for (var i = 0; i < 12; i++)
        {
            using var anonymous = s_testbed.Api.CreateClient();
            (await anonymous.GetAsync(new Uri("/api/me", UriKind.Relative), Ct)).Dispose();
        }
        var user = await s_testbed.NewUserAsync(Ct);
        for (var i = 0; i < 5; i++)
        {
            Assert.AreEqual(HttpStatusCode.OK, (await user.Client.GetAsync(new Uri("/api/me", UriKind.Relative), Ct)).StatusCode);
        }
        await EvaluateAsync();
        var alert = (await AlertsAsync("rate-limit-refusals", null)).Single();
        Assert.AreEqual("address:127.0.0.1", alert.GetProperty("subject").GetString());
        Assert.IsEmpty(await AlertsAsync("rate-limit-refusals", "account:" + user.Subject));
    }

    [TestMethod]
    public async Task Reaching_for_administration_without_the_role_or_without_a_second_factor_fires_per_person()
    {
        var curious = await s_testbed.NewUserAsync(Ct);
        using (var refused = await curious.Client.GetAsync(new Uri("/api/admin/alerts", UriKind.Relative), Ct))
        {
            Assert.AreEqual(HttpStatusCode.Forbidden, refused.StatusCode);
        }
        // An administrator whose session has no second factor, at Identity's administration pages.
        var secondAdmin = await IdentitySubjectAsync(SecondAdminEmail);
        using (var browser = s_testbed.Identity.Browser())
        {
            (await OidcFlows.LoginAsync(browser, SecondAdminEmail, OidcFlows.GoodPassword, Ct)).Dispose();
            using var page = await browser.GetAsync(new Uri("/admin/users", UriKind.Relative), Ct);
            Assert.AreNotEqual(HttpStatusCode.OK, page.StatusCode, "administration needs the second factor");
        }
        await EvaluateAsync();
        Assert.HasCount(1, await AlertsAsync("administration-refused", curious.Subject));
        var withoutMfa = (await AlertsAsync("administrator-without-mfa", secondAdmin)).Single();
        Assert.AreEqual("high", withoutMfa.GetProperty("severity").GetString());
        // The administrator with a second factor, busy reading alerts, fires nothing.
        var adminSubject = OidcFlows.DecodeJwt(s_admin.DefaultRequestHeaders.Authorization!.Parameter!).Payload.GetProperty("sub").GetString();
        Assert.IsEmpty(await AlertsAsync("administration-refused", adminSubject));
    }

    [TestMethod]
    public async Task Mass_key_revocations_fire_with_their_audit_entries_end_after_a_quiet_period_and_a_later_wave_is_a_new_episode()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "keys", Ct);
        await RevokeKeysAsync(owner.Client, workspaceId, 1);
        await EvaluateAsync();
        Assert.IsEmpty(await AlertsAsync("mass-key-revocations", null), "one revocation is housekeeping");

        await RevokeKeysAsync(owner.Client, workspaceId, 3);
        await EvaluateAsync();
        var first = (await AlertsAsync("mass-key-revocations", null)).Single();
        var detail = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/alerts/{first.GetProperty("id").GetGuid()}", Ct);
        Assert.AreEqual(owner.Subject, detail.GetProperty("subjects")[0].GetProperty("subject").GetString(), "who did it, most first");
        var entries = detail.GetProperty("auditEntries").EnumerateArray().ToList();
        Assert.IsGreaterThanOrEqualTo(3, entries.Count, detail.ToString());
        Assert.IsTrue(entries.All(e => e.GetProperty("action").GetString() == "api_key.revoked" && e.GetProperty("actorId").GetString() == owner.Subject));

        try
        {
            // Quiet for the rule's window and quiet period: the episode ends.
            ApiClock.Advance(TimeSpan.FromMinutes(3));
            await EvaluateAsync();
            var resolved = (await AlertsAsync("mass-key-revocations", null)).Single();
            Assert.AreEqual("resolved", resolved.GetProperty("status").GetString());

            await RevokeKeysAsync(owner.Client, workspaceId, 3);
            await EvaluateAsync();
            var episodes = await AlertsAsync("mass-key-revocations", null);
            Assert.HasCount(2, episodes, "a later wave is a new episode");
            Assert.AreEqual("firing", episodes[0].GetProperty("status").GetString());
        }
        finally
        {
            ApiClock.Advance(-TimeSpan.FromMinutes(3));
        }
    }

    [TestMethod]
    public async Task Two_replicas_evaluating_on_their_own_open_one_alert_for_a_wave_of_role_changes_and_mail_once()
    {
        await using var replica = await ApiHost.StartReplicaAsync(s_testbed.Identity, s_testbed.Api, Ct);
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "roles", Ct);
        var member = await s_testbed.JoinAsync(owner.Client, workspaceId, "member", Ct);
        foreach (var role in new[] { "admin", "member", "admin", "viewer" })
        {
            using var changed = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/members/{member.Subject}", new { role }, Ct);
            Assert.AreEqual(HttpStatusCode.OK, changed.StatusCode, await changed.Content.ReadAsStringAsync(Ct));
        }
        // No round is run by hand: both replicas' own rounds (every second) find the wave.
        await Poll.UntilAsync(async () => (await AlertsAsync("mass-role-changes", null)).FirstOrDefault() is { ValueKind: JsonValueKind.Object } a
            && a.GetProperty("lastSeen").GetDateTimeOffset() > a.GetProperty("firstSeen").GetDateTimeOffset().AddSeconds(3),
            TimeSpan.FromSeconds(60), "the replicas' rounds open the alert and keep it up to date", Ct);
        Assert.HasCount(1, await AlertsAsync("mass-role-changes", null));
        var alertId = (await AlertsAsync("mass-role-changes", null))[0].GetProperty("id").GetGuid().ToString();
        await Poll.UntilAsync(async () => (await TestRig.Smtp.MessagesToAsync(AdminEmail, Ct)).Any(m => m.Text.Contains(alertId, StringComparison.Ordinal)),
            TimeSpan.FromSeconds(30), "the administrators are mailed", Ct);
        // More rounds on both replicas: still that one mail.
        await EvaluateAsync();
        Assert.HasCount(1, (await TestRig.Smtp.MessagesToAsync(AdminEmail, Ct)).Where(m => m.Text.Contains(alertId, StringComparison.Ordinal)).ToList());
    }

    [TestMethod]
    public async Task Erasures_in_a_burst_fire_and_the_alerts_are_a_metric_Prometheus_can_scrape_with_its_own_scope()
    {
        for (var i = 0; i < 2; i++)
        {
            var person = await s_testbed.NewUserAsync(Ct);
            using var erased = await person.Client.SendJsonAsync(HttpMethod.Delete, "/api/me", new { confirmEmail = person.Email }, Ct);
            Assert.IsTrue(erased.IsSuccessStatusCode, await erased.Content.ReadAsStringAsync(Ct));
        }
        await Poll.UntilAsync(async () => (await AlertsAsync("mass-erasures", null)).Count == 1, TimeSpan.FromSeconds(60), "the erasures fire", Ct);

        var (status, token) = await OidcFlows.ClientCredentialsAsync(s_testbed.Identity.CreateClient(), MetricsClient, MetricsSecret, Ct, "api.metrics");
        Assert.AreEqual(HttpStatusCode.OK, status, token.ToString());
        using var scraper = s_testbed.Api.CreateClient();
        scraper.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.GetProperty("access_token").GetString());
        var text = await Poll.UntilAsync(async () =>
        {
            var body = await scraper.GetStringAsync(new Uri("/metrics", UriKind.Relative), Ct);
            return body.Contains("rule=\"mass-erasures\"", StringComparison.Ordinal) ? body : null;
        }, TimeSpan.FromSeconds(30), "the firing gauge shows the alert", Ct);
        StringAssert.Contains(text, "clippybot_security_alerts_firing");

        // Nobody else reads the metrics: not anonymous callers, not people, not the administrator.
        using (var anonymous = s_testbed.Api.CreateClient())
        {
            // 401, or 429 once this class's small anonymous limit is used up (the rate-limit test spends it).
            using var refused = await anonymous.GetAsync(new Uri("/metrics", UriKind.Relative), Ct);
            Assert.IsTrue(refused.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.TooManyRequests, refused.StatusCode.ToString());
            Assert.DoesNotContain("clippybot_", await refused.Content.ReadAsStringAsync(Ct));
        }
        Assert.AreEqual(HttpStatusCode.Forbidden, (await s_admin.GetAsync(new Uri("/metrics", UriKind.Relative), Ct)).StatusCode);
        // …and the metrics scope opens nothing else.
        Assert.AreEqual(HttpStatusCode.Forbidden, (await scraper.GetAsync(new Uri("/api/admin/alerts", UriKind.Relative), Ct)).StatusCode);
    }

    [TestMethod]
    public async Task Rotating_the_signing_keys_or_a_data_key_raises_one_info_alert_each()
    {
        await EvaluateAsync();
        Assert.IsEmpty(await AlertsAsync("signing-key-rotation", null));
        Assert.IsEmpty(await AlertsAsync("encryption-key-rotation", null));
        for (var i = 0; i < 2; i++)
        {
            using var signing = await s_admin.PostAsync(new Uri("/api/admin/signing-keys/rotate", UriKind.Relative), null, Ct);
            Assert.AreEqual(HttpStatusCode.OK, signing.StatusCode, await signing.Content.ReadAsStringAsync(Ct));
            using var data = await s_admin.PostAsync(new Uri("/api/admin/encryption/rotate", UriKind.Relative), null, Ct);
            Assert.AreEqual(HttpStatusCode.Accepted, data.StatusCode, await data.Content.ReadAsStringAsync(Ct));
            await EvaluateAsync();
        }
        foreach (var rule in new[] { "signing-key-rotation", "encryption-key-rotation" })
        {
            var alert = (await AlertsAsync(rule, null)).Single();
            Assert.AreEqual("info", alert.GetProperty("severity").GetString());
            Assert.AreEqual(2, alert.GetProperty("count").GetInt64(), rule + ": both rotations, one episode");
        }
    }

    [TestMethod]
    public async Task A_failed_restore_drill_raised_by_the_AppHost_fires_a_critical_alert_for_that_cluster()
    {
        var prefix = s_testbed.Api.Services.GetRequiredService<ClippyBot.ServiceDefaults.Detection.SecuritySignals>().KeyPrefix;
        await using var backups = new ClippyBot.AppHost.Infrastructure.BackupSignals(Aspire.Hosting.ApplicationModel.ReferenceExpression.Create($"{TestRig.Redis.ConnectionString}"),
            prefix, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger<ClippyBot.AppHost.Infrastructure.BackupSignals>.Instance);
        await EvaluateAsync();
        Assert.IsEmpty(await AlertsAsync("restore-drill-failures", null), "passing drills raise nothing");

        await backups.RaiseAsync(ClippyBot.Contracts.SecuritySignalNames.RestoreDrillFailed, "postgres-subjectkeys", "repository 2: the restored cluster did not start");
        await backups.RaiseAsync(ClippyBot.Contracts.SecuritySignalNames.ArchiveLagging, "postgres", "the oldest waiting WAL segment is 400 s old");
        await EvaluateAsync();
        var drill = (await AlertsAsync("restore-drill-failures", "postgres-subjectkeys")).Single();
        Assert.AreEqual("critical", drill.GetProperty("severity").GetString());
        var detail = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/alerts/{drill.GetProperty("id").GetGuid()}", Ct);
        StringAssert.Contains(detail.GetProperty("samples")[0].GetProperty("detail").GetString(), "repository 2");
        Assert.HasCount(1, await AlertsAsync("backup-archive-lag", "postgres"));
    }

    [TestMethod]
    public async Task A_writer_that_floods_its_signal_hash_with_subjects_costs_the_rounds_a_bounded_read_and_still_counts()
    {
        // What a compromised service could write under its own prefix: 20,000 subjects in one minute (honest writers add 1,000).
        var prefix = s_testbed.Api.Services.GetRequiredService<ClippyBot.ServiceDefaults.Detection.SecuritySignals>().KeyPrefix;
        await using var redis = await StackExchange.Redis.ConnectionMultiplexer.ConnectAsync(TestRig.Redis.ConnectionString);
        var key = ClippyBot.Contracts.SecuritySignalKeys.BucketKey(prefix, "registry:ratelimit.refused",
            ClippyBot.Contracts.SecuritySignalKeys.MinuteOf(DateTimeOffset.UtcNow));
        var fields = Enumerable.Range(0, 20_000).Select(i => new StackExchange.Redis.HashEntry($"address:10.{i / 65536}.{i / 256 % 256}.{i % 256}", 1))
            .Append(new StackExchange.Redis.HashEntry("*", 20_000)).ToArray();
        await redis.GetDatabase().HashSetAsync(key, fields);
        await redis.GetDatabase().KeyExpireAsync(key, TimeSpan.FromMinutes(10));

        await EvaluateAsync();
        var flood = (await AlertsAsync("rate-limit-refusals", ClippyBot.Api.Detection.AlertEvaluator.ManySubjects)).Concat(await AlertsAsync("rate-limit-refusals", "(other)")).ToList();
        Assert.HasCount(1, flood, "the flood is counted as one subject it cannot name, not read field by field");
        Assert.IsGreaterThanOrEqualTo(20_000, flood[0].GetProperty("count").GetInt64());
    }

    [TestMethod]
    public async Task Bad_alert_queries_are_problems_never_500s()
    {
        foreach (var query in new[] { "?status=open", "?pageSize=0", "?pageSize=100000", "?rule=" + new string('r', 5000), "?before=not-a-guid" })
        {
            using var response = await s_admin.GetAsync(new Uri("/api/admin/alerts" + query, UriKind.Relative), Ct);
            Assert.AreEqual(HttpStatusCode.BadRequest, response.StatusCode, query);
            Assert.AreEqual("application/problem+json", response.Content.Headers.ContentType?.MediaType, query);
        }
        using var unknown = await s_admin.GetAsync(new Uri($"/api/admin/alerts/{Guid.NewGuid()}", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.NotFound, unknown.StatusCode);
        var rules = await s_admin.GetFromJsonAsync<JsonElement>("/api/admin/detection/rules", Ct);
        Assert.AreEqual(2, rules.EnumerateArray().Single(r => r.GetProperty("name").GetString() == "account-sign-in-failures").GetProperty("threshold").GetInt64(),
            "a configured threshold replaces the default");
    }

    private static async Task EvaluateAsync()
    {
        await s_testbed.Api.Services.GetRequiredService<AlertEvaluator>().EvaluateAsync(CancellationToken.None);
        await using var scope = s_testbed.Api.Services.CreateAsyncScope();
        await scope.ServiceProvider.GetRequiredService<AlertMail>().SendPendingAsync(CancellationToken.None);
    }

    private async Task<List<JsonElement>> AlertsAsync(string rule, string? subject)
    {
        var page = await s_admin.GetFromJsonAsync<JsonElement>($"/api/admin/alerts?rule={rule}&pageSize=200", Ct);
        return [.. page.GetProperty("alerts").EnumerateArray().Where(a => subject is null || a.GetProperty("subject").GetString() == subject)];
    }

    private async Task RevokeKeysAsync(HttpClient owner, Guid workspaceId, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var (keyId, _) = await ApiTestbed.CreateApiKeyAsync(owner, workspaceId, ["dataRead"], null, Ct);
            using var revoked = await owner.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/api-keys/{keyId}", UriKind.Relative), Ct);
            Assert.IsTrue(revoked.IsSuccessStatusCode, await revoked.Content.ReadAsStringAsync(Ct));
        }
    }

    private static async Task<string> IdentitySubjectAsync(string email)
    {
        await using var scope = s_testbed.Identity.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<ClippyBot.Identity.Accounts.ApplicationUser>>();
        return (await users.FindByEmailAsync(email))!.Id.ToString();
    }
}
