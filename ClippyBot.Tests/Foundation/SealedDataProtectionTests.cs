using System.Security.Cryptography;
using ClippyBot.Api.Data;
using ClippyBot.PluginHost.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace ClippyBot.Tests.Foundation;

/// <summary>Every service's Data Protection key ring is shared by its replicas through its own database, and sealed there.</summary>
[TestClass]
public sealed class SealedDataProtectionTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public Task The_Api_key_ring_is_shared_by_replicas_and_sealed_in_apidb() => AssertSharedAndSealedAsync<ApiDbContext>("apidb", new()
    {
        ["ApiKeys:HashKey"] = RandomNumberGenerator.GetHexString(64),
        ["Audit:ChainKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
        ["Encryption:KeyEncryptionKey"] = RandomNumberGenerator.GetHexString(64),
    });

    [TestMethod]
    public Task The_PluginHost_key_ring_is_shared_by_replicas_and_sealed_in_pluginsdb() => AssertSharedAndSealedAsync<PluginsDbContext>("pluginsdb", new()
    {
        ["Encryption:KeyEncryptionKey"] = RandomNumberGenerator.GetHexString(64),
    });

    [TestMethod]
    public async Task A_service_without_the_sealing_secret_refuses_to_start()
    {
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var factory = await ServiceFactory.WithFreshDatabaseAsync<PluginsDbContext>("pluginsdb",
            configureServices: s => s.AddLogging(b => b.AddProvider(new CapturingLoggerProvider(failures))), ct: TestContext.CancellationToken);
        // The test host reports a failed start either with the start-up exception itself or — when its own disposal wins
        // the race — with ObjectDisposedException; the reason is what the host logged as it failed.
        var error = Assert.Throws<Exception>(() => factory.CreateClient());
        var reasons = failures.Append(error.ToString()).ToList();
        Assert.IsTrue(reasons.Any(r => r.Contains("Encryption:KeyEncryptionKey", StringComparison.Ordinal)), string.Join("\n", reasons));
    }

    private async Task AssertSharedAndSealedAsync<TContext>(string database, Dictionary<string, string?> settings) where TContext : class
    {
        var ct = TestContext.CancellationToken;
        await using var first = await ServiceFactory.WithFreshDatabaseAsync<TContext>(database, settings, ct: ct);
        using (first.CreateClient())
        {
        }
        await using var second = new ServiceFactory<TContext>(first.Settings);
        using (second.CreateClient())
        {
        }
        var sealedByFirst = first.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Protect("payload");
        Assert.AreEqual("payload", second.Services.GetRequiredService<IDataProtectionProvider>().CreateProtector("test").Unprotect(sealedByFirst));

        await using var connection = new NpgsqlConnection(first.Settings[$"ConnectionStrings:{database}"]);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("SELECT string_agg(\"Xml\", '') FROM \"DataProtectionKeys\"", connection);
        var xml = (string)(await command.ExecuteScalarAsync(ct))!;
        StringAssert.Contains(xml, "<sealedKey");
        Assert.DoesNotContain("<masterKey", xml, "no plaintext key material in the database");
    }
}
