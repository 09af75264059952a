using System.Net;
using ClippyBot.Backup.PointInTime;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Npgsql;

namespace ClippyBot.Tests.Api;

/// <summary>
/// "An erased person stays erased after a PITR restore": apidb and identitydb live on a cluster archiving through
/// pgBackRest and are restored to a moment before the erasure; subjectkeysdb, on a cluster of its own, is not rolled back.
/// The Api started on the restored cluster does the erasure again.
/// </summary>
[TestClass]
[DoNotParallelize]
public sealed class ErasureAfterPointInTimeRecoveryTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(600_000, CooperativeCancellation = true)]
    public async Task A_person_erased_after_the_moment_a_restore_returns_to_is_erased_again_when_the_Api_starts_on_the_restored_cluster()
    {
        var ct = TestContext.CancellationToken;
        await using var archiving = await ArchivingPostgres.StartAsync(ct);
        var apidb = await archiving.Live.CreateDatabaseAsync("apidb", ct);
        var identitydb = await archiving.Live.CreateDatabaseAsync("identitydb", ct);
        await using var testbed = await ApiTestbed.StartAsync(ct,
            apiSettings: new Dictionary<string, string?> { ["ConnectionStrings:apidb"] = apidb },
            identitySettings: new Dictionary<string, string?> { ["ConnectionStrings:identitydb"] = identitydb });
        var keys = testbed.Api.Settings["ConnectionStrings:subjectkeysdb"]!;
        Assert.AreNotEqual(new NpgsqlConnectionStringBuilder(apidb).Port, new NpgsqlConnectionStringBuilder(keys).Port, "people's keys live in another cluster");

        var person = await testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(person.Client, "Before the restore point", ct);
        await archiving.WaitPastNewestBackupAsync(apidb, ct);
        var noted = await ArchivingPostgres.ClockAsync(apidb, ct);
        using (var deleted = await person.Client.SendJsonAsync(HttpMethod.Delete, $"/api/workspaces/{workspaceId}", new { confirmName = "Before the restore point" }, ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, deleted.StatusCode);
        }
        using (var erased = await person.Client.SendJsonAsync(HttpMethod.Delete, "/api/me", new { confirmEmail = person.Email }, ct))
        {
            Assert.AreEqual(HttpStatusCode.NoContent, erased.StatusCode, await erased.Content.ReadAsStringAsync(ct));
        }
        Assert.IsTrue(await PrivacyTests.ScalarAsync<bool>(keys, $"SELECT \"WrappedKey\" IS NULL FROM \"SubjectKeys\" WHERE \"SubjectId\" = '{person.Subject}'", ct));
        await archiving.PgBackRest.EnsureStanzaAsync(ct);

        // The operator restores the main cluster to the noted moment (docs/backup.md); the keys cluster stays as it is.
        var into = Path.Combine(archiving.Live.Cluster.DataRoot, "restored");
        await archiving.PgBackRest.RestoreAsync(into, 2, new DateTimeOffset(noted, TimeSpan.Zero), ct);
        await using var restored = await RestoredCluster.StartAsync(into, ct);
        var apiName = new NpgsqlConnectionStringBuilder(apidb).Database!;
        var identityName = new NpgsqlConnectionStringBuilder(identitydb).Database!;
        var membership = $"SELECT count(*) FROM \"Memberships\" WHERE \"UserId\" = '{person.Subject}'";
        var account = $"SELECT count(*) FROM \"AspNetUsers\" WHERE \"Id\" = '{person.Subject}'";
        Assert.AreEqual("1", await restored.QueryAsync(apiName, membership, ct), "the restored apidb has the person as they were");
        Assert.AreEqual("1", await restored.QueryAsync(identityName, account, ct), "so does the restored identitydb");
        Assert.AreEqual("0", await restored.QueryAsync(apiName, "SELECT count(*) FROM \"AccountErasures\"", ct));

        // The services on the restored cluster (a role with a password: its socket lets postgres in by peer only).
        var password = System.Security.Cryptography.RandomNumberGenerator.GetHexString(32);
        await restored.QueryAsync("postgres", $"CREATE ROLE restored_services LOGIN SUPERUSER PASSWORD '{password}'", ct);
        string On(string database) => new NpgsqlConnectionStringBuilder
        {
            Host = restored.SocketDirectory,
            Port = RestoredCluster.Port,
            Username = "restored_services",
            Password = password,
            Database = database,
        }.ConnectionString;
        await using var identity = await IdentityHost.StartReplicaAsync(testbed.Identity,
            new Dictionary<string, string?> { ["ConnectionStrings:identitydb"] = On(identityName) }, ct);
        await using var api = await ApiHost.StartReplicaAsync(identity, testbed.Api, ct,
            new Dictionary<string, string?> { ["ConnectionStrings:apidb"] = On(apiName) });

        await Poll.UntilAsync(async () => await restored.QueryAsync(apiName,
                $"SELECT count(*) FROM \"AccountErasures\" WHERE \"SubjectId\" = '{person.Subject}' AND \"CompletedAt\" IS NOT NULL", ct) == "1",
            TimeSpan.FromSeconds(60), "the erasure done again and completed at Identity", ct);
        Assert.AreEqual("0", await restored.QueryAsync(apiName, membership, ct), "the person's membership is gone again");
        Assert.AreEqual("0", await restored.QueryAsync(identityName, account, ct), "and their account at Identity");
        Assert.AreEqual("1", await restored.QueryAsync(apiName,
            $"SELECT count(*) FROM \"AuditEntries\" WHERE \"Action\" = 'account.erasure-reapplied' AND \"Target\" = '{person.Subject}'", ct));
        Assert.IsTrue(await PrivacyTests.ScalarAsync<bool>(keys, $"SELECT \"WrappedKey\" IS NULL FROM \"SubjectKeys\" WHERE \"SubjectId\" = '{person.Subject}'", ct),
            "the key stays shredded");
        // The workspace they solely owned at that moment is kept, without an owner, for a platform administrator.
        Assert.AreEqual("0", await restored.QueryAsync(apiName, $"SELECT count(*) FROM \"Memberships\" WHERE \"WorkspaceId\" = '{workspaceId}'", ct));
        Assert.AreEqual("1", await restored.QueryAsync(apiName, $"SELECT count(*) FROM \"Workspaces\" WHERE \"Id\" = '{workspaceId}'", ct));
        NpgsqlConnection.ClearAllPools();
    }
}
