using ClippyBot.PluginHost.Data;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ClippyBot.Tests.Foundation;

/// <summary>
/// The services as a deployment runs them (<c>ASPNETCORE_ENVIRONMENT=Production</c>), not as the test rig's
/// <c>Testing</c>: switches meant for local work, tests and the benchmark cannot reach production.
/// </summary>
[TestClass]
public sealed class ProductionPostureTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class Environment(string name) : IHostEnvironment
    {
        public string EnvironmentName { get; set; } = name;

        public string ApplicationName { get; set; } = "test";

        public string ContentRootPath { get; set; } = "/";

        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = null!;
    }

    [TestMethod]
    [DataRow("Oidc:AllowHttp", "true")]
    [DataRow("Identity:AllowHttp", "True")]
    [DataRow("Edge:RequireHttps", "false")]
    [DataRow("Bench:UnauthenticatedWorkspaceRead", "true")]
    public void An_unsafe_switch_is_refused_outside_development_testing_and_bench(string key, string value)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [key] = value }).Build();
        foreach (var refused in new[] { "Production", "Staging", "Prod" })
        {
            var error = Assert.Throws<InvalidOperationException>(() => UnsafeSwitches.Guard(configuration, new Environment(refused)), refused);
            StringAssert.Contains(error.Message, key, "the message names the switch");
        }
        foreach (var allowed in new[] { "Development", "Testing", "Bench" })
        {
            UnsafeSwitches.Guard(configuration, new Environment(allowed));
        }
        // The safe value of each switch is fine anywhere.
        var safe = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { [key] = value.Equals("false", StringComparison.OrdinalIgnoreCase) ? "true" : "false" }).Build();
        UnsafeSwitches.Guard(safe, new Environment("Production"));
    }

    [TestMethod]
    [DataRow("00:00:00.001", "00:00:05", DisplayName = "a refresh loop with no pause")]
    [DataRow("00:00:01", "01:00:00", DisplayName = "a stalled refresher leaves quarantines unenforced for an hour")]
    [DataRow("00:00:05", "00:00:05", DisplayName = "every invocation asks the database")]
    [DataRow("01:00:00", "02:00:00", DisplayName = "no periodic refresh")]
    public void Plugin_state_freshness_outside_the_safe_range_is_refused_in_production(string refresh, string staleAfter)
    {
        var options = new ClippyBot.PluginHost.Plugins.PluginStateOptions
        {
            RefreshInterval = TimeSpan.Parse(refresh, System.Globalization.CultureInfo.InvariantCulture),
            StaleAfter = TimeSpan.Parse(staleAfter, System.Globalization.CultureInfo.InvariantCulture),
        };
        Assert.IsFalse(ClippyBot.PluginHost.Plugins.PluginStateOptions.IsSafe(options, new Environment("Production")));
        Assert.IsTrue(ClippyBot.PluginHost.Plugins.PluginStateOptions.IsSafe(new ClippyBot.PluginHost.Plugins.PluginStateOptions(), new Environment("Production")), "the defaults are safe");
        // A test may switch the periodic refresh off (announcements only), never below 100 ms.
        Assert.AreEqual(options.RefreshInterval >= TimeSpan.FromMilliseconds(100) && options.StaleAfter >= options.RefreshInterval * 2,
            ClippyBot.PluginHost.Plugins.PluginStateOptions.IsSafe(options, new Environment("Testing")));
    }

    [TestMethod]
    [DataRow("Oidc:AllowHttp", "true")]
    [DataRow("Identity:AllowHttp", "true")]
    [DataRow("Edge:RequireHttps", "false")]
    [DataRow("Bench:UnauthenticatedWorkspaceRead", "true")]
    public async Task A_service_started_in_production_with_an_unsafe_switch_refuses_to_start_and_names_it(string key, string value)
    {
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var factory = await ServiceFactory.WithFreshDatabaseAsync<PluginsDbContext>("Production", "pluginsdb", new Dictionary<string, string?>
        {
            ["Encryption:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
            [key] = value,
        }, s => s.AddLogging(b => b.AddProvider(new CapturingLoggerProvider(failures))), TestContext.CancellationToken);
        var error = Assert.Throws<Exception>(() => factory.CreateClient());
        var reasons = failures.Append(error.ToString()).ToList();
        Assert.IsTrue(reasons.Any(r => r.Contains(key + "=" + value, StringComparison.Ordinal) && r.Contains("Production", StringComparison.Ordinal)), string.Join("\n", reasons));
    }

    private static readonly string Secret64 = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64);

    /// <summary>A service in Production behind real Kestrel: https (the AppHost's kind of certificate) and a plain-http port.</summary>
    private async Task<(ServiceFactory<T> Factory, HttpClient Https, HttpClient Http, Uri HttpsAddress, System.Security.Cryptography.X509Certificates.X509Certificate2 Ca)> StartAsync<T>(
        string database, Dictionary<string, string?> settings) where T : class
    {
        var folder = Directory.CreateTempSubdirectory("clippybot-prod-").FullName;
        var certificates = ClippyBot.AppHost.Infrastructure.DevelopmentCertificates.Ensure(folder, TimeProvider.System);
        settings["Kestrel:Endpoints:Https:Url"] = "https://127.0.0.1:0";
        settings["Kestrel:Endpoints:Https:Certificate:Path"] = certificates.ServerCertificatePath;
        settings["Kestrel:Endpoints:Https:Certificate:KeyPath"] = certificates.ServerKeyPath;
        settings["Kestrel:Endpoints:Http:Url"] = "http://127.0.0.1:0";
        settings["Tls:TrustedCaFile"] = certificates.CaCertificatePath;
        var factory = await ServiceFactory.WithFreshDatabaseAsync<T>("Production", database, settings, null, TestContext.CancellationToken);
        factory.UseKestrel();
        factory.StartServer();
        var addresses = factory.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features
            .Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses;
        var https = new Uri(addresses.Single(a => a.StartsWith("https", StringComparison.Ordinal)));
        var http = new Uri(addresses.Single(a => a.StartsWith("http:", StringComparison.Ordinal)));
        var ca = certificates.LoadCaCertificate();
        var handler = new System.Net.Http.SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            SslOptions = { RemoteCertificateValidationCallback = (_, certificate, _, errors) => ClippyBot.Security.PrivateCaTrust.IsTrusted(ca, certificate, errors) },
        };
        return (factory, new HttpClient(handler) { BaseAddress = https }, new HttpClient(new System.Net.Http.SocketsHttpHandler { AllowAutoRedirect = false }) { BaseAddress = http }, https, ca);
    }

    private async Task AssertHstsAsync(HttpClient https, HttpMethod method, string path, string? body, System.Net.HttpStatusCode expected, string what)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null)
        {
            request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        }
        using var response = await https.SendAsync(request, TestContext.CancellationToken);
        Assert.AreEqual(expected, response.StatusCode, $"{what}: {await response.Content.ReadAsStringAsync(TestContext.CancellationToken)}");
        Assert.IsTrue(response.Headers.TryGetValues("Strict-Transport-Security", out var values), $"{what}: HSTS");
        var maxAge = System.Text.RegularExpressions.Regex.Match(values.Single(), "max-age=(\\d+)");
        Assert.IsTrue(maxAge.Success && long.Parse(maxAge.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= 180L * 24 * 3600, $"{what}: {values.Single()}");
    }

    /// <summary>A TLS 1.2 handshake is answered with TLS's protocol_version alert, not merely "some exception".</summary>
    private async Task AssertTls12RefusedWithAlertAsync(Uri https, System.Security.Cryptography.X509Certificates.X509Certificate2 ca)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(https.Host, https.Port, TestContext.CancellationToken);
        await using var ssl = new System.Net.Security.SslStream(tcp.GetStream(), false, (_, c, _, e) => ClippyBot.Security.PrivateCaTrust.IsTrusted(ca, c, e));
#pragma warning disable SYSLIB0039 // TLS 1.2 on purpose: the test proves it is refused.
        var error = await Assert.ThrowsAsync<System.Security.Authentication.AuthenticationException>(() => ssl.AuthenticateAsClientAsync(
            new System.Net.Security.SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = System.Security.Authentication.SslProtocols.Tls12 }, TestContext.CancellationToken));
#pragma warning restore SYSLIB0039
        var text = error.ToString();
        Assert.IsTrue(text.Contains("protocol version", StringComparison.OrdinalIgnoreCase) || text.Contains("PROTOCOL_VERSION", StringComparison.Ordinal), text);
    }

    private static async Task AssertKeysSealedAsync<T>(ServiceFactory<T> factory, string database, CancellationToken ct) where T : class
    {
        factory.Services.GetRequiredService<Microsoft.AspNetCore.DataProtection.IDataProtectionProvider>().CreateProtector("posture").Protect("x"u8.ToArray());
        await using var connection = new Npgsql.NpgsqlConnection(factory.Settings[$"ConnectionStrings:{database}"]);
        await connection.OpenAsync(ct);
        await using var command = new Npgsql.NpgsqlCommand("SELECT string_agg(\"Xml\", '') FROM \"DataProtectionKeys\"", connection);
        var xml = (string)(await command.ExecuteScalarAsync(ct))!;
        StringAssert.Contains(xml, "<sealedKey");
        Assert.DoesNotContain("<masterKey", xml);
    }

    [TestMethod]
    public async Task The_Api_in_production_sends_hsts_everywhere_refuses_plain_http_and_tls_12_and_has_no_api_explorer()
    {
        var ct = TestContext.CancellationToken;
        var (api, https, http, address, ca) = await StartAsync<ClippyBot.Api.Data.ApiDbContext>("apidb", new Dictionary<string, string?>
        {
            ["ApiKeys:HashKey"] = Secret64, ["Audit:ChainKey"] = Secret64, ["Encryption:KeyEncryptionKey"] = Secret64,
            ["Identity:MetadataAddress"] = "https://identity.clippybot.test/.well-known/openid-configuration",
            ["Privacy:PublicBaseUrl"] = "https://api.clippybot.test", ["Invitations:AcceptUrl"] = "https://app.clippybot.test/invitations/accept",
            ["ServiceClient:IdentityAddress"] = "https://identity.clippybot.test", ["ServiceClient:PluginHostAddress"] = "https://pluginhost.clippybot.test",
            ["ServiceClient:ClientSecret"] = Secret64,
            ["Email:Host"] = "127.0.0.1", ["Email:Port"] = "9", ["Email:Security"] = "StartTls",
        });
        await using (api)
        using (https)
        using (http)
        using (ca)
        {
            await AssertHstsAsync(https, HttpMethod.Get, "/health", null, System.Net.HttpStatusCode.OK, "a normal response");
            // Unknown paths need authentication too (nothing about routes is given away to anonymous callers).
            await AssertHstsAsync(https, HttpMethod.Get, "/no-such-page", null, System.Net.HttpStatusCode.Unauthorized, "an unknown path");
            await AssertHstsAsync(https, HttpMethod.Get, "/.well-known/security.txt", null, System.Net.HttpStatusCode.OK, "an anonymous page");
            await AssertHstsAsync(https, HttpMethod.Get, "/api/me", null, System.Net.HttpStatusCode.Unauthorized, "a refusal");
            // No API explorer: neither route exists in Production's routing table.
            var routes = api.Services.GetRequiredService<Microsoft.AspNetCore.Routing.EndpointDataSource>().Endpoints.OfType<Microsoft.AspNetCore.Routing.RouteEndpoint>()
                .Select(e => "/" + e.RoutePattern.RawText!.TrimStart('/')).ToList();
            Assert.IsNotEmpty(routes);
            Assert.IsFalse(routes.Any(r => r.StartsWith("/openapi", StringComparison.OrdinalIgnoreCase) || r.StartsWith("/scalar", StringComparison.OrdinalIgnoreCase)),
                string.Join(", ", routes.Where(r => r.Contains("openapi", StringComparison.OrdinalIgnoreCase) || r.Contains("scalar", StringComparison.OrdinalIgnoreCase))));
            using (var plain = await http.GetAsync(new Uri("/api/me", UriKind.Relative), ct))
            {
                Assert.AreEqual(System.Net.HttpStatusCode.BadRequest, plain.StatusCode, "plain http is refused");
                StringAssert.Contains(await plain.Content.ReadAsStringAsync(ct), "https-required");
            }
            await AssertTls12RefusedWithAlertAsync(address, ca);
            await AssertKeysSealedAsync(api, "apidb", ct);
        }
    }

    [TestMethod]
    public async Task Identity_in_production_sends_hsts_redirects_plain_http_pages_refuses_tls_12_and_no_development_client_works()
    {
        var ct = TestContext.CancellationToken;
        var (identity, https, http, address, ca) = await StartAsync<ClippyBot.Identity.Data.IdentityDataContext>("identitydb", new Dictionary<string, string?>
        {
            ["Oidc:KeyEncryptionKey"] = Secret64, ["Oidc:ClientSecretHashKey"] = Secret64, ["Oidc:Issuer"] = "https://identity.clippybot.test/",
            ["AccountSecurity:PublicBaseUrl"] = "https://identity.clippybot.test", ["Email:Host"] = "127.0.0.1", ["Email:Port"] = "9", ["Email:Security"] = "StartTls",
            ["Edge:HttpsPort"] = "443",
            // A development client in the configuration, as a developer's settings file might carry into a deployment.
            ["Oidc:Clients:0:ClientId"] = "clippybot-dev-tool", ["Oidc:Clients:0:ClientSecret"] = Secret64,
            ["Oidc:Clients:0:GrantTypes:0"] = "client_credentials", ["Oidc:Clients:0:Scopes:0"] = "pluginhost", ["Oidc:Clients:0:DevelopmentOnly"] = "true",
        });
        await using (identity)
        using (https)
        using (http)
        using (ca)
        {
            await AssertHstsAsync(https, HttpMethod.Get, "/account/login", null, System.Net.HttpStatusCode.OK, "a page");
            await AssertHstsAsync(https, HttpMethod.Get, "/no-such-page", null, System.Net.HttpStatusCode.NotFound, "a 404");
            await AssertHstsAsync(https, HttpMethod.Post, "/internal/audit-anchors", "{", System.Net.HttpStatusCode.Unauthorized, "a refusal");
            using (var plain = await http.GetAsync(new Uri("/account/login", UriKind.Relative), ct))
            {
                Assert.AreEqual(System.Net.HttpStatusCode.PermanentRedirect, plain.StatusCode, "a plain-http page visit goes to https");
                Assert.AreEqual("https", plain.Headers.Location?.Scheme);
            }
            await AssertTls12RefusedWithAlertAsync(address, ca);
            // Sign-in popups stay cut off from whoever opened them in a deployment (relaxed only for Scalar on a developer's machine).
            using (var authorize = await https.GetAsync(new Uri("/connect/authorize?client_id=x&response_type=code", UriKind.Relative), ct))
            {
                Assert.AreEqual("same-origin", authorize.Headers.GetValues("Cross-Origin-Opener-Policy").Single());
            }

            // The development client is not registered in Production: its credentials get nowhere.
            using var token = await https.PostAsync(new Uri("/connect/token", UriKind.Relative), new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = "clippybot-dev-tool", ["client_secret"] = Secret64, ["scope"] = "pluginhost",
            }), ct);
            Assert.IsTrue(token.StatusCode is System.Net.HttpStatusCode.BadRequest or System.Net.HttpStatusCode.Unauthorized, $"{token.StatusCode}: {await token.Content.ReadAsStringAsync(ct)}");
            StringAssert.Contains(await token.Content.ReadAsStringAsync(ct), "invalid_client");
            await AssertKeysSealedAsync(identity, "identitydb", ct);
        }
    }

    [TestMethod]
    public async Task The_PluginHost_in_production_sends_hsts_refuses_tls_12_and_seals_its_keys()
    {
        var ct = TestContext.CancellationToken;
        var (host, https, http, address, ca) = await StartAsync<PluginsDbContext>("pluginsdb", new Dictionary<string, string?>
        {
            ["Encryption:KeyEncryptionKey"] = Secret64,
            ["Identity:MetadataAddress"] = "https://identity.clippybot.test/.well-known/openid-configuration",
        });
        await using (host)
        using (https)
        using (http)
        using (ca)
        {
            await AssertHstsAsync(https, HttpMethod.Get, "/health", null, System.Net.HttpStatusCode.OK, "a normal response");
            await AssertHstsAsync(https, HttpMethod.Get, "/no-such-page", null, System.Net.HttpStatusCode.Unauthorized, "an unknown path");
            await AssertHstsAsync(https, HttpMethod.Post, "/internal/plugins/x/invoke", "{", System.Net.HttpStatusCode.Unauthorized, "a refusal");
            using (var plain = await http.GetAsync(new Uri("/internal/plugins", UriKind.Relative), ct))
            {
                Assert.AreEqual(System.Net.HttpStatusCode.BadRequest, plain.StatusCode, "plain http is refused");
            }
            await AssertTls12RefusedWithAlertAsync(address, ca);
            await AssertKeysSealedAsync(host, "pluginsdb", ct);
        }
    }
}
