using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ClippyBot.Api.Connections;
using ClippyBot.Api.Data;
using ClippyBot.Api.Encryption;
using ClippyBot.Tests.Rig;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ClippyBot.Tests.Api;

/// <summary>
/// Envelope encryption at rest: the format binds each ciphertext to its place, OAuth tokens go in and never come out of the
/// Api, and key rotation moves every row to the new key — resumably, with nothing lost when the job is stopped halfway.
/// </summary>
[TestClass]
public sealed class EncryptionTests
{
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    private CancellationToken Ct => TestContext.CancellationToken;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_testbed = await ApiTestbed.StartWithAdminAsync(context.CancellationToken,
        new Dictionary<string, string?> { ["Encryption:ReencryptionBatchSize"] = "25", ["Encryption:ReencryptionBatchPause"] = "00:00:00.050" });

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public void An_envelope_opens_only_in_its_own_place_and_untouched()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var keyId = Guid.NewGuid();
        var place = new EnvelopeContext("t", "c", Guid.NewGuid(), Guid.NewGuid());
        var envelope = Envelope.Seal(keyId, key, "secret"u8, place.ToAssociatedData());

        Assert.AreEqual(keyId, Envelope.KeyIdOf(envelope));
        Assert.AreEqual("secret", Encoding.UTF8.GetString(Envelope.Open(key, envelope, place.ToAssociatedData())));
        foreach (var elsewhere in new[] { place with { RowId = Guid.NewGuid() }, place with { Column = "d" }, place with { Table = "u" }, place with { WorkspaceId = Guid.NewGuid() } })
        {
            Assert.ThrowsExactly<AuthenticationTagMismatchException>(() => Envelope.Open(key, envelope, elsewhere.ToAssociatedData()), elsewhere.ToString());
        }
        for (var i = 0; i < envelope.Length; i++)
        {
            var tampered = (byte[])envelope.Clone();
            tampered[i] ^= 0x01;
            Assert.Throws<CryptographicException>(() => Envelope.Open(key, tampered, place.ToAssociatedData()), $"byte {i}");
        }
        var other = Envelope.Seal(keyId, key, "secret"u8, place.ToAssociatedData());
        CollectionAssert.AreNotEqual(envelope, other, "a fresh nonce per message");
    }

    [TestMethod]
    public async Task OAuth_tokens_go_in_encrypted_and_never_come_out_of_the_Api()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Integrations", Ct);
        var access = "gho_" + RandomNumberGenerator.GetHexString(36);
        var refresh = "ghr_" + RandomNumberGenerator.GetHexString(36);

        using var created = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/connections",
            new { provider = "GitHub", accessToken = access, refreshToken = refresh, scopes = new[] { "repo" }, expiresAt = DateTimeOffset.UtcNow.AddHours(8) }, Ct);
        var body = await created.Content.ReadAsStringAsync(Ct);
        Assert.AreEqual(HttpStatusCode.Created, created.StatusCode, body);
        Assert.DoesNotContain(access, body);
        var id = JsonDocument.Parse(body).RootElement.GetProperty("id").GetGuid();
        Assert.AreEqual("github", JsonDocument.Parse(body).RootElement.GetProperty("provider").GetString());
        var listed = await owner.Client.GetStringAsync(new Uri($"/api/workspaces/{workspaceId}/connections", UriKind.Relative), Ct);
        Assert.DoesNotContain(access, listed);
        Assert.DoesNotContain(refresh, listed);
        StringAssert.Contains(listed, "\"hasRefreshToken\":true");

        // In the database: envelopes only.
        var row = await RawRowAsync(id);
        Assert.DoesNotContain(access, Encoding.UTF8.GetString(row.AccessToken));
        Assert.AreEqual(Envelope.Version, row.AccessToken[0]);

        // Opened in memory for use (the plugin host call will go through this).
        await using (var scope = s_testbed.Api.Services.CreateAsyncScope())
        {
            var vault = scope.ServiceProvider.GetRequiredService<OAuthVault>();
            var tokens = await vault.OpenAsync(workspaceId, id, Ct);
            Assert.AreEqual(access, tokens!.AccessToken);
            Assert.AreEqual(refresh, tokens.RefreshToken);
            Assert.IsNull(await vault.OpenAsync(Guid.NewGuid(), id, Ct), "another workspace cannot open it");
        }

        using var bad = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/connections", new { provider = "no spaces", accessToken = "" }, Ct);
        Assert.AreEqual(HttpStatusCode.BadRequest, bad.StatusCode);
        var problem = await bad.Content.ReadFromJsonAsync<JsonElement>(Ct);
        Assert.IsTrue(problem.GetProperty("errors").TryGetProperty("provider", out _));
        Assert.IsTrue(problem.GetProperty("errors").TryGetProperty("accessToken", out _));

        var member = await s_testbed.JoinAsync(owner.Client, workspaceId, "member", Ct);
        using var forbidden = await member.Client.GetAsync(new Uri($"/api/workspaces/{workspaceId}/connections", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, forbidden.StatusCode);
        using var deleted = await owner.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/connections/{id}", UriKind.Relative), Ct);
        Assert.AreEqual(HttpStatusCode.NoContent, deleted.StatusCode);
    }

    [TestMethod]
    public async Task A_token_copied_into_another_row_does_not_decrypt_there()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Copy", Ct);
        var first = await CreateConnectionAsync(owner.Client, workspaceId, "first-token");
        var second = await CreateConnectionAsync(owner.Client, workspaceId, "second-token");
        await using (var connection = new NpgsqlConnection(s_testbed.Api.Settings["ConnectionStrings:apidb"]))
        {
            await connection.OpenAsync(Ct);
            await using var copy = new NpgsqlCommand("""UPDATE "OAuthConnections" SET "AccessToken" = (SELECT "AccessToken" FROM "OAuthConnections" WHERE "Id" = @a) WHERE "Id" = @b""", connection);
            copy.Parameters.AddWithValue("a", first);
            copy.Parameters.AddWithValue("b", second);
            Assert.AreEqual(1, await copy.ExecuteNonQueryAsync(Ct));
        }
        await using var scope = s_testbed.Api.Services.CreateAsyncScope();
        await Assert.ThrowsAsync<CryptographicException>(() => scope.ServiceProvider.GetRequiredService<OAuthVault>().OpenAsync(workspaceId, second, Ct));
    }

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task Rotation_moves_every_row_to_the_new_key_and_resumes_after_being_stopped_halfway()
    {
        var owner = await s_testbed.NewUserAsync(Ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Rotation", Ct);
        var expected = new Dictionary<Guid, string>();
        await using (var scope = s_testbed.Api.Services.CreateAsyncScope())
        {
            var vault = scope.ServiceProvider.GetRequiredService<OAuthVault>();
            for (var i = 0; i < 300; i++)
            {
                var token = $"token-{i}-{RandomNumberGenerator.GetHexString(8)}";
                var row = await vault.StoreAsync(workspaceId, "acme", [], new OAuthVault.Tokens(token, i % 2 == 0 ? "refresh-" + token : null, null), "test", DateTimeOffset.UtcNow, Ct);
                expected[row.Id] = token;
            }
        }
        var secretValue = "secret-" + RandomNumberGenerator.GetHexString(16);
        using (var stored = await owner.Client.SendJsonAsync(HttpMethod.Put, $"/api/workspaces/{workspaceId}/secrets/ROTATED", new { value = secretValue }, Ct))
        {
            Assert.AreEqual(HttpStatusCode.Created, stored.StatusCode);
        }

        // A second Api replica does the rotation and is stopped while its job is halfway.
        var replica = await ApiHost.StartReplicaAsync(s_testbed.Identity, s_testbed.Api, Ct);
        Guid newKey;
        Guid runId;
        using (var admin = replica.CreateClient())
        {
            admin.DefaultRequestHeaders.Authorization = s_testbed.Admin.DefaultRequestHeaders.Authorization;
            using var rotated = await admin.PostAsync(new Uri("/api/admin/encryption/rotate", UriKind.Relative), null, Ct);
            var run = await rotated.Content.ReadFromJsonAsync<JsonElement>(Ct);
            Assert.AreEqual(HttpStatusCode.Accepted, rotated.StatusCode, run.ToString());
            newKey = run.GetProperty("targetKeyId").GetGuid();
            runId = run.GetProperty("id").GetGuid();
            await Poll.UntilAsync(async () => await ProcessedAsync(runId) >= 50, TimeSpan.FromSeconds(60), "the job to be under way", Ct);
        }
        await replica.DisposeAsync();
        var atStop = await ProcessedAsync(runId);
        Assert.IsLessThan(300L, atStop, "stopped before the end");

        // The other replica heard of the rotation: its new writes use the new key too.
        var ring = s_testbed.Api.Services.GetRequiredService<KeyRing>();
        await Poll.UntilAsync(async () => (await ring.CurrentAsync(Ct)).Id == newKey, TimeSpan.FromSeconds(10), "the rotation announced to the other replica", Ct);
        var fresh = await CreateConnectionAsync(owner.Client, workspaceId, "written-after-rotation");
        Assert.AreEqual(newKey, (await RawRowAsync(fresh)).KeyId);

        // The remaining replica resumes from the cursor and finishes.
        s_testbed.Api.Services.GetRequiredService<ReencryptionService>().Wake();
        await Poll.UntilAsync(async () =>
        {
            var status = await s_testbed.Admin.GetFromJsonAsync<JsonElement>("/api/admin/encryption", Ct);
            return status.GetProperty("runs").EnumerateArray().Any(r => r.GetProperty("id").GetGuid() == runId && r.GetProperty("completedAt").ValueKind != JsonValueKind.Null);
        }, TimeSpan.FromSeconds(90), "the run to complete", Ct);

        var report = await s_testbed.Admin.GetFromJsonAsync<JsonElement>("/api/admin/encryption", Ct);
        var keys = report.GetProperty("keys").EnumerateArray().ToList();
        Assert.IsTrue(keys.Single(k => k.GetProperty("id").GetGuid() == newKey).GetProperty("current").GetBoolean());
        // Only rows that do not decrypt (another test tampers with one on purpose) stay behind, counted and logged.
        var finished = report.GetProperty("runs").EnumerateArray().Single(r => r.GetProperty("id").GetGuid() == runId);
        Assert.AreEqual(finished.GetProperty("unreadable").GetInt64(), keys.Where(k => k.GetProperty("id").GetGuid() != newKey).Sum(k => k.GetProperty("rows").GetInt32()), report.ToString());
        await using var check = s_testbed.Api.Services.CreateAsyncScope();
        var db = check.ServiceProvider.GetRequiredService<ApiDbContext>();
        Assert.AreEqual(0, await db.OAuthConnections.CountAsync(c => c.WorkspaceId == workspaceId && c.KeyId != newKey, Ct));
        var vaultAfter = check.ServiceProvider.GetRequiredService<OAuthVault>();
        foreach (var (id, token) in expected)
        {
            var tokens = await vaultAfter.OpenAsync(workspaceId, id, Ct);
            Assert.AreEqual(token, tokens!.AccessToken, "nothing lost or mixed up");
        }
        Assert.AreEqual(0, await db.WorkspaceSecrets.CountAsync(c => c.WorkspaceId == workspaceId && c.KeyId != newKey, Ct), "workspace secrets moved too");
        var opened = await check.ServiceProvider.GetRequiredService<ClippyBot.Api.Secrets.SecretVault>().OpenAsync(workspaceId, ["ROTATED"], Ct);
        Assert.AreEqual(secretValue, opened["ROTATED"]);
    }

    private async Task<Guid> CreateConnectionAsync(HttpClient client, Guid workspaceId, string token)
    {
        using var created = await client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/connections", new { provider = "acme", accessToken = token }, Ct);
        Assert.AreEqual(HttpStatusCode.Created, created.StatusCode, await created.Content.ReadAsStringAsync(Ct));
        return (await created.Content.ReadFromJsonAsync<JsonElement>(Ct)).GetProperty("id").GetGuid();
    }

    private async Task<OAuthConnection> RawRowAsync(Guid id)
    {
        await using var scope = s_testbed.Api.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ApiDbContext>().OAuthConnections.AsNoTracking().SingleAsync(c => c.Id == id, Ct);
    }

    private async Task<long> ProcessedAsync(Guid runId)
    {
        await using var scope = s_testbed.Api.Services.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<ApiDbContext>().ReencryptionRuns.Where(r => r.Id == runId).Select(r => r.Processed).SingleAsync(Ct);
    }
}
