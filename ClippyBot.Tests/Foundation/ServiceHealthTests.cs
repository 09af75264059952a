using System.Net;
using System.Text.Json;
using ClippyBot.Api.Data;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.Identity.Data;
using ClippyBot.PluginHost.Data;
using ClippyBot.Tests.Rig;
using Npgsql;

namespace ClippyBot.Tests.Foundation;

[TestClass]
public sealed class ServiceHealthTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public Task Identity_migrates_its_database_and_reports_healthy() => AssertMigratesAndReportsHealthyAsync<IdentityDataContext>("identitydb", IdentitySettings(), "cache", "oidc-clients");

    [TestMethod]
    public Task Api_migrates_its_database_and_reports_healthy() => AssertMigratesAndReportsHealthyAsync<ApiDbContext>("apidb", ApiSettings(), "cache", "subjectkeysdb", "subjectkeysdb-migrations", "erasures-reapplied");

    [TestMethod]
    // No cache check: the PluginHost holds no cache connection (least privilege; its announcements go through pluginsdb).
    public Task PluginHost_migrates_its_database_and_reports_healthy() => AssertMigratesAndReportsHealthyAsync<PluginsDbContext>("pluginsdb", PluginHostSettings());

    [TestMethod]
    public async Task Health_answers_503_with_per_check_status_when_dependencies_are_down_and_alive_stays_200()
    {
        var deadPort = LocalInfrastructureOptions.FreePort();
        const string secret = "never-show-this-password";
        await using var factory = new ServiceFactory<ApiDbContext>(new Dictionary<string, string?>
        {
            ["ConnectionStrings:apidb"] = $"Host=127.0.0.1;Port={deadPort};Database=apidb;Username=postgres;Password={secret};Timeout=2",
            ["ConnectionStrings:subjectkeysdb"] = $"Host=127.0.0.1;Port={deadPort};Database=subjectkeysdb;Username=postgres;Password={secret};Timeout=2",
            ["ConnectionStrings:cache"] = $"127.0.0.1:{deadPort},password={secret},connectTimeout=1000",
            ["ApiKeys:HashKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
            ["Audit:ChainKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
            ["Encryption:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
        });
        using var client = factory.CreateClient();

        using var health = await client.GetAsync(new Uri("/health", UriKind.Relative), TestContext.CancellationToken);
        var body = await health.Content.ReadAsStringAsync(TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.ServiceUnavailable, health.StatusCode, body);
        var checks = ReadChecks(body);
        Assert.AreEqual("Unhealthy", checks["apidb"]);
        Assert.AreEqual("Unhealthy", checks["cache"]);
        Assert.AreEqual("Unhealthy", checks["apidb-migrations"]);
        Assert.AreEqual("Unhealthy", checks["subjectkeysdb"]);
        Assert.AreEqual("Healthy", checks["self"]);
        AssertRevealsNothing(body, secret, deadPort.ToString(System.Globalization.CultureInfo.InvariantCulture));

        using var alive = await client.GetAsync(new Uri("/alive", UriKind.Relative), TestContext.CancellationToken);
        Assert.AreEqual(HttpStatusCode.OK, alive.StatusCode);
    }

    [TestMethod]
    public async Task Unknown_routes_answer_with_problem_details_and_no_server_header()
    {
        await using var factory = await ServiceFactory.WithFreshDatabaseAsync<IdentityDataContext>("identitydb", IdentitySettings(), ct: TestContext.CancellationToken);
        using var client = factory.CreateClient();

        using var response = await client.GetAsync(new Uri("/no-such-thing", UriKind.Relative), TestContext.CancellationToken);

        Assert.AreEqual(HttpStatusCode.NotFound, response.StatusCode);
        Assert.AreEqual("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync(TestContext.CancellationToken));
        Assert.AreEqual(404, problem.RootElement.GetProperty("status").GetInt32());
        Assert.IsFalse(response.Headers.Contains("Server"));
    }

    private static Dictionary<string, string?> ApiSettings() => new()
    {
        ["ApiKeys:HashKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
        ["Audit:ChainKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
        ["Encryption:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
    };

    private static Dictionary<string, string?> PluginHostSettings() => new()
    {
        ["Encryption:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
    };

    private static Dictionary<string, string?> IdentitySettings() => new()
    {
        ["Oidc:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
        ["Oidc:ClientSecretHashKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
    };

    private async Task AssertMigratesAndReportsHealthyAsync<TEntryPoint>(string connectionName, IReadOnlyDictionary<string, string?>? settings = null, params string[] extraChecks)
        where TEntryPoint : class
    {
        var ct = TestContext.CancellationToken;
        await using var factory = await ServiceFactory.WithFreshDatabaseAsync<TEntryPoint>(connectionName, settings, ct: ct);
        using var client = factory.CreateClient();

        // Migration runs in the background; readiness must flip to healthy on its own.
        string body = "";
        await Poll.UntilAsync(async () =>
        {
            using var response = await client.GetAsync(new Uri("/health", UriKind.Relative), ct);
            body = await response.Content.ReadAsStringAsync(ct);
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(60), $"{connectionName} service healthy", ct);

        var checks = ReadChecks(body);
        CollectionAssert.AreEquivalent(new[] { connectionName, $"{connectionName}-migrations", "self" }.Concat(extraChecks).ToArray(), checks.Keys.ToArray());
        Assert.IsTrue(checks.Values.All(s => s == "Healthy"), body);
        AssertRevealsNothing(body, new NpgsqlConnectionStringBuilder(factory.Settings[$"ConnectionStrings:{connectionName}"]).Password!,
            TestRig.Postgres.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        await using var connection = new NpgsqlConnection(factory.Settings[$"ConnectionStrings:{connectionName}"]);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("""SELECT "MigrationId" FROM "__EFMigrationsHistory" ORDER BY "MigrationId" LIMIT 1""", connection);
        var applied = (string?)await command.ExecuteScalarAsync(ct);
        StringAssert.EndsWith(applied, "_InitialSchema");
    }

    private static Dictionary<string, string> ReadChecks(string body)
    {
        using var json = JsonDocument.Parse(body);
        return json.RootElement.GetProperty("checks").EnumerateArray()
            .ToDictionary(c => c.GetProperty("name").GetString()!, c => c.GetProperty("status").GetString()!);
    }

    private static void AssertRevealsNothing(string body, string password, string port)
    {
        StringAssert.DoesNotMatch(body, new System.Text.RegularExpressions.Regex(System.Text.RegularExpressions.Regex.Escape(password)));
        Assert.IsFalse(body.Contains("Host=", StringComparison.OrdinalIgnoreCase), body);
        Assert.IsFalse(body.Contains("127.0.0.1", StringComparison.Ordinal), body);
        Assert.IsFalse(body.Contains(port, StringComparison.Ordinal), body);
        Assert.IsFalse(body.Contains("exception", StringComparison.OrdinalIgnoreCase), body);
    }
}
