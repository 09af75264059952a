using System.Net.Http.Json;
using System.Net;
using Aspire.Hosting;
using Aspire.Hosting.ApplicationModel;
using Aspire.Hosting.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ClippyBot.ServiceDefaults.Edge;
using ClippyBot.Tests.Identity;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Tests.Rig;

namespace ClippyBot.Tests.Foundation;

/// <summary>Starts the real AppHost in local mode (no containers), exactly as the README's first command does.</summary>
[TestClass]
// Alone: beside the other classes on two cores, its first plugin event answered without an outcome once in clean-clone CI.
[DoNotParallelize]
public sealed class AppHostEndToEndTests
{
    private static readonly string[] Services = ["identity", "api", "pluginhost", "registry"];
    private static readonly string[] Infrastructure = ["postgres", "postgres-subjectkeys", "cache", "mail", "identitydb", "apidb", "subjectkeysdb", "pluginsdb", "registrydb"];

    public TestContext TestContext { get; set; } = null!;

    // Both caches the AppHost can run: redis-server where installed (CI), Garnet on a fresh machine (the README's first command).
    [TestMethod]
    [DataRow("redis")]
    [DataRow("garnet")]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task Local_mode_brings_every_resource_up_healthy_over_TLS_and_health_follows_postgres_stop_and_start(string cacheServer)
    {
        var ct = TestContext.CancellationToken;
        var builder = await DistributedApplicationTestingBuilder.CreateAsync<Projects.ClippyBot_AppHost>(
            ["--Infrastructure=local", "--LocalInfrastructure:Persistent=false", $"--LocalInfrastructure:RedisServer={cacheServer}"],
            (options, _) => options.DisableDashboard = true,
            ct);
        // Every resource's log, to show that a healthy start logs no error (the dashboard would mark it red).
        var logs = new System.Collections.Concurrent.ConcurrentQueue<string>();
        builder.Services.AddLogging(b => b.AddProvider(new CapturingLoggerProvider(logs)));
        // The backup schedule's clippybot.backup.* metrics, as an exporter would read them.
        var backupMetrics = new System.Collections.Concurrent.ConcurrentDictionary<string, double>(StringComparer.Ordinal);
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ClippyBot.AppHost.Infrastructure.BackupMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        static string Series(System.Diagnostics.Metrics.Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var labels = new List<string>();
            foreach (var tag in tags)
            {
                labels.Add($"{tag.Key}={tag.Value}");
            }
            labels.Sort(StringComparer.Ordinal);
            return instrument.Name + "{" + string.Join(",", labels) + "}";
        }
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => backupMetrics[Series(instrument, tags)] = value);
        listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => backupMetrics[Series(instrument, tags)] = value);
        listener.Start();
        await using var app = await builder.BuildAsync(ct);
        await app.StartAsync(ct);

        foreach (var resource in Infrastructure.Concat(Services))
        {
            await app.ResourceNotifications.WaitForResourceHealthyAsync(resource, ct).WaitAsync(TimeSpan.FromMinutes(2), ct);
        }

        if (cacheServer == "garnet")
        {
            // The README's five-minute tour, step by step in Chromium, on the start a fresh machine gets.
            await new ReadmeTour(TestContext).FollowAsync(app, builder, ct);
        }

        // The dashboard links each service's useful pages.
        foreach (var (resource, path) in new[] { ("identity", "/account/register"), ("identity", "/account/manage"), ("api", "/scalar") })
        {
            Assert.IsTrue(app.ResourceNotifications.TryGetCurrentState(resource, out var state), resource);
            Assert.IsTrue(state.Snapshot.Urls.Any(u => u.Url.EndsWith(path, StringComparison.Ordinal)),
                $"{resource} links {path}: {string.Join(", ", state.Snapshot.Urls.Select(u => u.Url))}");
        }

        // The services present the AppHost's development certificate; this test trusts its CA and nothing else extra.
        var identityResource = builder.Resources.OfType<ProjectResource>().Single(r => r.Name == "identity");
#pragma warning disable CS0618 // Its replacement (ExecutionConfigurationBuilder) is marked for evaluation only; this reads one variable.
        var environment = await identityResource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Run);
#pragma warning restore CS0618
        using var ca = ClippyBot.Security.PrivateCaTrust.Load(environment["Tls__TrustedCaFile"]);

        // Least privilege: every service connects as its database's runtime role — no superuser, no DDL, no database or role creation.
        foreach (var service in builder.Resources.OfType<ProjectResource>().Where(r => Services.Contains(r.Name)))
        {
#pragma warning disable CS0618
            var variables = await service.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Run);
#pragma warning restore CS0618
            var databases = variables.Where(v => v.Key.StartsWith("ConnectionStrings__", StringComparison.Ordinal) && v.Value.Contains("Database=", StringComparison.Ordinal)).ToList();
            Assert.IsNotEmpty(databases, service.Name);
            Assert.AreEqual("Await", variables["Database__Migrations"], $"{service.Name} leaves migrations to its migrator");
            // The cache as the service's own ACL user (the registry's may touch only its rate-limit keys); the PluginHost,
            // which runs third-party code, holds no cache credential.
            if (service.Name is "pluginhost")
            {
                Assert.IsFalse(variables.ContainsKey("ConnectionStrings__cache"), $"the {service.Name} holds no cache credential");
            }
            else
            {
                StringAssert.Contains(variables["ConnectionStrings__cache"], $",user={service.Name},", service.Name);
            }
            foreach (var (name, connectionString) in databases)
            {
                await using var connection = new Npgsql.NpgsqlConnection(connectionString);
                await connection.OpenAsync(ct);
                await using var command = new Npgsql.NpgsqlCommand(
                    "SELECT rolsuper OR rolcreatedb OR rolcreaterole OR has_database_privilege(current_user, current_database(), 'CREATE') FROM pg_roles WHERE rolname = current_user", connection);
                Assert.IsFalse((bool)(await command.ExecuteScalarAsync(ct))!, $"{service.Name} {name} connects as {connection.UserName}, which may do more than read and write rows");
            }
        }
        // Plain clients: the resilience handler of Aspire's test clients would retry the 503s we want to see.
        var clients = Services.ToDictionary(s => s, s => new HttpClient(TrustingHandler(ca)) { BaseAddress = app.GetEndpoint(s, "https"), Timeout = TimeSpan.FromSeconds(10) });
        try
        {
            foreach (var (name, client) in clients)
            {
                Assert.AreEqual(HttpStatusCode.OK, await HealthStatusAsync(client, ct), $"{name} /health after start");
                // Only TLS listens: a plain-http request to the same port gets no HTTP answer.
                var plain = new UriBuilder(client.BaseAddress!) { Scheme = "http" }.Uri;
                using var plainClient = new HttpClient { BaseAddress = plain, Timeout = TimeSpan.FromSeconds(10) };
                await Assert.ThrowsAsync<HttpRequestException>(() => plainClient.GetAsync(new Uri("/health", UriKind.Relative), ct), $"{name} answered plain http");
            }

            // Service to service over TLS: the Api validates a user's token against Identity's JWKS fetched over https.
            using (var browser = new HttpClient(TrustingHandler(ca, new System.Net.CookieContainer())) { BaseAddress = clients["identity"].BaseAddress })
            {
                var (email, code, pkce) = await OidcFlows.RegisterAndSignInAsync(browser, ct, redirectUri: DevClientRedirect);
                var (status, tokens) = await OidcFlows.RedeemCodeAsync(clients["identity"], code, pkce, ct, redirectUri: DevClientRedirect);
                Assert.AreEqual(HttpStatusCode.OK, status, tokens.ToString());
                using var me = new HttpRequestMessage(HttpMethod.Get, new Uri("/api/me", UriKind.Relative));
                me.Headers.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
                using var answer = await clients["api"].SendAsync(me, ct);
                Assert.AreEqual(HttpStatusCode.OK, answer.StatusCode, await answer.Content.ReadAsStringAsync(ct));

                // The verification mail reached the development inbox, linking to Identity's public https address.
                using var inbox = new HttpClient { BaseAddress = app.GetEndpoint("mail", "http") };
                var link = "";
                await Poll.UntilAsync(async () =>
                {
                    var listing = await inbox.GetStringAsync(new Uri($"/api/messages?searchTerms={Uri.EscapeDataString(email)}", UriKind.Relative), ct);
                    var id = System.Text.Json.JsonDocument.Parse(listing).RootElement.GetProperty("results").EnumerateArray().Select(r => r.GetProperty("id").GetString()).FirstOrDefault();
                    link = id is null ? "" : await inbox.GetStringAsync(new Uri($"/api/messages/{id}/plaintext", UriKind.Relative), ct);
                    return id is not null;
                }, TimeSpan.FromSeconds(30), "verification mail in the inbox", ct);
                StringAssert.Contains(link, clients["identity"].BaseAddress!.GetLeftPart(UriPartial.Authority) + "/account/confirm-email?token=");

                // The developer flow on a fresh start: the example plugins, built and signed with the first-party key by the
                // AppHost, checked and approved by the registry, installed by the PluginHost from its signed metadata, are in
                // the Api's catalog; a workspace installs counter and gets its answer to an event.
                using var api = new HttpClient(TrustingHandler(ca)) { BaseAddress = clients["api"].BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
                api.DefaultRequestHeaders.Authorization = new("Bearer", tokens.GetProperty("access_token").GetString());
                using var created = await api.PostAsJsonAsync(new Uri("/api/workspaces", UriKind.Relative), new { name = "Bots" }, ct);
                Assert.AreEqual(HttpStatusCode.Created, created.StatusCode, await created.Content.ReadAsStringAsync(ct));
                var workspaceId = (await created.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(ct)).GetProperty("id").GetString();
                System.Text.Json.JsonElement counter = default;
                await Poll.UntilAsync(async () => (await api.GetFromJsonAsync<System.Text.Json.JsonElement>(new Uri("/api/plugins", UriKind.Relative), ct))
                    .EnumerateArray().Any(p => (counter = p).GetProperty("id").GetString() == "dev.clippybot.counter"), TimeSpan.FromMinutes(3), "counter in the catalog", ct);
                // The catalog says when the registry approved it (from its signed listing).
                Assert.IsTrue(counter.GetProperty("reviewedAt").GetDateTimeOffset() > DateTimeOffset.UtcNow.AddHours(-1), counter.ToString());
                using var installed = await api.PostAsJsonAsync(new Uri($"/api/workspaces/{workspaceId}/plugins", UriKind.Relative),
                    new { pluginId = "dev.clippybot.counter", version = "1.0.0", acceptedPermissions = new[] { "storage:kv" } }, ct);
                Assert.AreEqual(HttpStatusCode.Created, installed.StatusCode, await installed.Content.ReadAsStringAsync(ct));
                using var delivered = await api.PostAsJsonAsync(new Uri($"/api/workspaces/{workspaceId}/plugins/dev.clippybot.counter/events", UriKind.Relative),
                    new { @event = "on_message", payload = new { text = "hi" } }, ct);
                var counted = await delivered.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(ct);
                Assert.AreEqual("Completed", counted.GetProperty("outcome").GetString(), counted.ToString());
            }

            // The dashboard as the operator's console: each command runs as the AppHost's operator client, answers with the
            // Api's result, and lands in the platform audit chain as the account running the AppHost.
            foreach (var command in new[] { "rotate-data-keys", "rotate-signing-keys", "release-quarantines", "verify-audit-chains" })
            {
                var result = await app.ResourceCommands.ExecuteCommandAsync("api", command, ct);
                Assert.IsTrue(result.Success, $"{command}: {result.Message}");
            }
            var apiResource = builder.Resources.OfType<ProjectResource>().Single(r => r.Name == "api");
#pragma warning disable CS0618
            var apiVariables = await apiResource.GetEnvironmentVariableValuesAsync(DistributedApplicationOperation.Run);
#pragma warning restore CS0618
            await using (var apidb = new Npgsql.NpgsqlConnection(apiVariables.Single(v => v.Key.StartsWith("ConnectionStrings__", StringComparison.Ordinal) && v.Key.EndsWith("apidb", StringComparison.Ordinal)).Value))
            {
                await apidb.OpenAsync(ct);
                await using var audited = new Npgsql.NpgsqlCommand(
                    "SELECT string_agg(\"Action\" || '=' || \"Outcome\", ',' ORDER BY \"Action\") FROM \"AuditEntries\" WHERE \"ChainId\" = '00000000-0000-0000-0000-000000000000' AND \"ActorType\" = 'operator' AND \"ActorId\" = @actor", apidb);
                audited.Parameters.AddWithValue("actor", $"clippybot-operator for {Environment.UserName}@{Environment.MachineName}");
                Assert.AreEqual("audit.chains_verified=intact,encryption.key_rotated=success,oidc.signing_keys_rotated=success,plugin.quarantines_released=success", await audited.ExecuteScalarAsync(ct) as string);
            }

            // Continuous archiving (pgBackRest, installed by .ci/run): the first full backups are in both repositories, and a
            // restore drill run from the dashboard restores them with every service database and its migrations.
            foreach (var schedule in new[] { BackupScheduleExtensions.ResourceName, BackupScheduleExtensions.KeysResourceName })
            {
                await app.ResourceNotifications.WaitForResourceAsync(schedule, e => e.Snapshot.State?.Text == "Archiving", ct).WaitAsync(TimeSpan.FromMinutes(2), ct);
            }
            if (cacheServer == "redis")
            {
                // People's keys have a cluster of their own whose backups age out within 30 days (daily fulls, a 28-day
                // window); every other database is in the main cluster with the 30-day window.
                foreach (var (schedule, databases, retention) in new[]
                {
                    (BackupScheduleExtensions.ResourceName, new[] { "identitydb", "apidb", "pluginsdb", "registrydb" }, 30),
                    (BackupScheduleExtensions.KeysResourceName, new[] { "subjectkeysdb" }, 28),
                })
                {
                    var drill = await app.ResourceCommands.ExecuteCommandAsync(schedule, "restore-drill", ct);
                    Assert.IsTrue(drill.Success, drill.Message);
                    Assert.IsTrue(app.ResourceNotifications.TryGetCurrentState(schedule, out var backups));
                    var lastDrill = backups.Snapshot.Properties.Single(p => p.Name == "backups.last-drill").Value?.ToString() ?? "";
                    StringAssert.Contains(lastDrill, "drill passed");
                    foreach (var database in databases)
                    {
                        StringAssert.Contains(lastDrill, database + " (");
                    }
                    Assert.AreEqual(databases.Length, System.Text.RegularExpressions.Regex.Count(lastDrill, @"db \(\d+ migrations\)"), lastDrill);
                    StringAssert.Contains(lastDrill, "within the window of the live ones");
                    var config = File.ReadAllText(backups.Snapshot.Properties.Single(p => p.Name == "backups.config").Value!.ToString()!);
                    StringAssert.Contains(config, $"repo1-retention-full={retention}\n");
                }

                // The same facts as metrics an operator alerts on: both repositories' first full backup, its size, the
                // drill's pass and RTO, the archive's lag.
                await Poll.UntilAsync(() =>
                {
                    listener.RecordObservableInstruments();
                    return Task.FromResult(backupMetrics.ContainsKey("clippybot.backup.wal_archive_lag{cluster=postgres}"));
                }, TimeSpan.FromSeconds(30), "the archive's lag observed", ct);
                var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
                foreach (var repository in new[] { 1, 2 })
                {
                    foreach (var cluster in new[] { "postgres", "postgres-subjectkeys" })
                    {
                        var lastFull = backupMetrics[$"clippybot.backup.last_success{{cluster={cluster},repository={repository},type=full}}"];
                        Assert.IsTrue(lastFull > now - 600 && lastFull <= now + 5, $"{cluster} repository {repository}'s full backup at {lastFull}, now {now}");
                        Assert.IsGreaterThan(0d, backupMetrics[$"clippybot.backup.size{{cluster={cluster},repository={repository},type=full}}"]);
                        Assert.IsTrue(backupMetrics.ContainsKey($"clippybot.backup.duration{{cluster={cluster},outcome=success,repository={repository},type=full}}"));
                    }
                }
                foreach (var cluster in new[] { "postgres", "postgres-subjectkeys" })
                {
                    Assert.AreEqual(1d, backupMetrics[$"clippybot.backup.drill.passed{{cluster={cluster}}}"]);
                    Assert.IsGreaterThan(0d, backupMetrics[$"clippybot.backup.drill.rto{{cluster={cluster}}}"]);
                }
                Assert.IsTrue(backupMetrics["clippybot.backup.wal_archive_lag{cluster=postgres}"] is >= 0 and < 600, "archive lag in seconds");
            }

            // A healthy start and first use: no error-level entry from any resource (the console logger's "fail:"/"crit:"
            // lines included, which reach the AppHost as plain output).
            var errors = logs.Select(l => System.Text.RegularExpressions.Regex.Replace(l, "\u001b\\[[0-9;]*m", ""))
                .Where(l => l.Contains("ClippyBot.AppHost.Resources.", StringComparison.Ordinal)
                            && (l.StartsWith("[Error]", StringComparison.Ordinal) || l.StartsWith("[Critical]", StringComparison.Ordinal)
                                || System.Text.RegularExpressions.Regex.IsMatch(l, "Z (fail|crit): ")))
                .ToList();
            Assert.IsEmpty(errors, string.Join("\n", errors.Take(20)) + "\n---\n" + string.Join("\n", logs.Where(l => l.Contains("Resources.registry", StringComparison.Ordinal)).Take(80)));

            await app.ResourceCommands.ExecuteCommandAsync("postgres", KnownResourceCommands.StopCommand, ct);
            foreach (var (name, client) in clients)
            {
                await Poll.UntilAsync(async () => await HealthStatusAsync(client, ct) == HttpStatusCode.ServiceUnavailable,
                    TimeSpan.FromSeconds(30), $"{name} /health 503 with postgres stopped", ct);
            }

            await app.ResourceCommands.ExecuteCommandAsync("postgres", KnownResourceCommands.StartCommand, ct);
            foreach (var (name, client) in clients)
            {
                await Poll.UntilAsync(async () => await HealthStatusAsync(client, ct) == HttpStatusCode.OK,
                    TimeSpan.FromSeconds(60), $"{name} /health 200 after postgres restarted", ct);
            }
        }
        finally
        {
            foreach (var client in clients.Values)
            {
                client.Dispose();
            }
        }
    }

    private const string DevClientRedirect = ClippyBot.AppHost.Infrastructure.IdentityConfiguration.DevClientRedirect;

    private static SocketsHttpHandler TrustingHandler(System.Security.Cryptography.X509Certificates.X509Certificate2 ca, System.Net.CookieContainer? cookies = null) => new()
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, errors) => ClippyBot.Security.PrivateCaTrust.IsTrusted(ca, certificate, errors) },
        AllowAutoRedirect = false,
        UseCookies = cookies is not null,
        CookieContainer = cookies ?? new System.Net.CookieContainer(),
    };

    private static async Task<HttpStatusCode> HealthStatusAsync(HttpClient client, CancellationToken ct)
    {
        using var response = await client.GetAsync(new Uri("/health", UriKind.Relative), ct);
        return response.StatusCode;
    }
}
