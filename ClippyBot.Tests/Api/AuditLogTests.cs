using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;

namespace ClippyBot.Tests.Api;

[TestClass]
public sealed class AuditLogTests
{
    private static ApiTestbed s_testbed = null!;

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static async Task StartAsync(TestContext context) => s_testbed = await ApiTestbed.StartAsync(context.CancellationToken);

    [ClassCleanup]
    public static async Task StopAsync() => await s_testbed.DisposeAsync();

    [TestMethod]
    public async Task Security_events_are_logged_with_actor_and_outcome_and_the_chain_verifies()
    {
        var ct = TestContext.CancellationToken;
        var (owner, workspaceId, viewer) = await WorkspaceWithEventsAsync(ct);

        var page = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit", ct);
        var actions = page.GetProperty("entries").EnumerateArray().Select(e => e.GetProperty("action").GetString()).ToList();
        CollectionAssert.IsSubsetOf(new[] { "workspace.created", "invitation.created", "invitation.accepted", "api_key.created", "api_key.revoked", "authorization.denied" }, actions);
        var created = page.GetProperty("entries").EnumerateArray().Single(e => e.GetProperty("action").GetString() == "workspace.created");
        Assert.AreEqual(owner.Subject, created.GetProperty("actorId").GetString());
        Assert.AreEqual("127.0.0.1", created.GetProperty("ipAddress").GetString());
        var denied = page.GetProperty("entries").EnumerateArray().Single(e => e.GetProperty("action").GetString() == "authorization.denied");
        Assert.AreEqual("denied", denied.GetProperty("outcome").GetString());
        Assert.AreEqual(viewer.Subject, denied.GetProperty("actorId").GetString());

        var verification = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
        Assert.IsTrue(verification.GetProperty("intact").GetBoolean());

        var filtered = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit?action=api_key.created&pageSize=1", ct);
        Assert.AreEqual(1, filtered.GetProperty("entries").GetArrayLength());
    }

    [TestMethod]
    public async Task The_database_refuses_edits_and_an_edit_made_anyway_is_found_by_verification()
    {
        var ct = TestContext.CancellationToken;
        var (owner, workspaceId, _) = await WorkspaceWithEventsAsync(ct);
        var page = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit", ct);
        var target = page.GetProperty("entries").EnumerateArray().Single(e => e.GetProperty("action").GetString() == "api_key.created").GetProperty("id").GetInt64();

        await using var connection = new NpgsqlConnection(s_testbed.Api.Settings["ConnectionStrings:apidb"]);
        await connection.OpenAsync(ct);
        await using (var edit = new NpgsqlCommand("UPDATE \"AuditEntries\" SET \"Target\" = 'nothing happened' WHERE \"Id\" = @id", connection))
        {
            edit.Parameters.AddWithValue("id", target);
            await Assert.ThrowsExactlyAsync<PostgresException>(() => edit.ExecuteNonQueryAsync(ct));
        }
        // Someone with the power to switch the trigger off edits the row: the chain still tells.
        await using (var tamper = new NpgsqlCommand(
            "SET session_replication_role = replica; UPDATE \"AuditEntries\" SET \"Target\" = 'nothing happened' WHERE \"Id\" = @id; SET session_replication_role = origin;", connection))
        {
            tamper.Parameters.AddWithValue("id", target);
            await tamper.ExecuteNonQueryAsync(ct);
        }

        var verification = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
        Assert.IsFalse(verification.GetProperty("intact").GetBoolean());
        Assert.AreEqual(target, verification.GetProperty("firstBrokenEntryId").GetInt64());
    }

    private static async Task AnchorAsync() =>
        await s_testbed.Api.Services.GetServices<Microsoft.Extensions.Hosting.IHostedService>().OfType<ClippyBot.Api.Audit.AuditAnchoring>().Single().AnchorAsync(CancellationToken.None);

    /// <summary>Runs <paramref name="sql"/> as the database superuser with triggers skipped: someone who can write the table at will.</summary>
    private async Task TamperAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(s_testbed.Api.Settings["ConnectionStrings:apidb"]);
        await connection.OpenAsync(TestContext.CancellationToken);
        await using var command = new NpgsqlCommand($"SET session_replication_role = replica; {sql}; SET session_replication_role = origin;", connection);
        await command.ExecuteNonQueryAsync(TestContext.CancellationToken);
    }

    private async Task<List<ClippyBot.Api.Audit.AuditEntry>> ChainAsync(Guid chainId)
    {
        await using var scope = s_testbed.Api.Services.CreateAsyncScope();
        return await Microsoft.EntityFrameworkCore.EntityFrameworkQueryableExtensions.ToListAsync(
            scope.ServiceProvider.GetRequiredService<ApiDbContext>().AuditEntries.Where(e => e.ChainId == chainId).OrderBy(e => e.Id), TestContext.CancellationToken);
    }

    [TestMethod]
    public async Task Truncating_the_tail_of_an_anchored_chain_is_found_and_named()
    {
        var ct = TestContext.CancellationToken;
        var (owner, workspaceId, _) = await WorkspaceWithEventsAsync(ct);
        await AnchorAsync();
        var chain = await ChainAsync(workspaceId);
        var head = chain[^1].Id;
        await TamperAsync($"DELETE FROM \"AuditEntries\" WHERE \"ChainId\" = '{workspaceId}' AND \"Id\" >= {chain[^2].Id}");

        var verification = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
        Assert.IsFalse(verification.GetProperty("intact").GetBoolean(), verification.ToString());
        Assert.AreEqual(head, verification.GetProperty("firstBrokenEntryId").GetInt64());
        StringAssert.Contains(verification.GetProperty("reason").GetString(), "truncated");
    }

    [TestMethod]
    public async Task A_chain_cut_behind_its_anchors_and_grown_again_is_found_at_the_first_removed_anchored_entry()
    {
        var ct = TestContext.CancellationToken;
        var (owner, workspaceId, _) = await WorkspaceWithEventsAsync(ct);
        async Task RenameAsync(string name)
        {
            using var renamed = await owner.Client.SendJsonAsync(HttpMethod.Patch, $"/api/workspaces/{workspaceId}", new { name }, ct);
            Assert.AreEqual(HttpStatusCode.OK, renamed.StatusCode, "an audited action: one more entry");
        }
        await AnchorAsync();
        var firstAnchored = (await ChainAsync(workspaceId))[^1].Id;
        await RenameAsync("Audited again");
        await AnchorAsync();

        // Whoever can write apidb removes the anchored tail; the Api, unaware, links its next entry (with a valid key) to
        // whatever is last now — so every link holds and no anchored id lies beyond the end.
        await TamperAsync($"DELETE FROM \"AuditEntries\" WHERE \"ChainId\" = '{workspaceId}' AND \"Id\" >= {firstAnchored}");
        await RenameAsync("Nothing to see");

        var verification = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
        Assert.IsFalse(verification.GetProperty("intact").GetBoolean(), verification.ToString());
        Assert.AreEqual(firstAnchored, verification.GetProperty("firstBrokenEntryId").GetInt64(), verification.ToString());
        StringAssert.Contains(verification.GetProperty("reason").GetString(), "removed");
    }

    [TestMethod]
    public async Task A_forged_head_is_never_anchored_so_removing_it_again_leaves_no_standing_alarm()
    {
        var ct = TestContext.CancellationToken;
        var (owner, workspaceId, _) = await WorkspaceWithEventsAsync(ct);
        await AnchorAsync();
        var head = (await ChainAsync(workspaceId))[^1];
        // A row with a huge id, linked to the real head but with a hash made up (the forger lacks the key).
        const long forgedId = 9_000_000_000_000;
        await TamperAsync($"""
            INSERT INTO "AuditEntries" ("Id", "ChainId", "At", "ActorType", "ActorId", "Action", "Target", "Outcome", "IpAddress", "PreviousHash", "Hash", "Keyed")
            VALUES ({forgedId}, '{workspaceId}', now(), 'user', 'forger', 'member.added', 'x', 'success', '', '\x{Convert.ToHexString(head.Hash)}', '\x{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32))}', true)
            """);
        await AnchorAsync();
        await using (var identityDb = new NpgsqlConnection(s_testbed.Identity.Settings["ConnectionStrings:identitydb"]))
        {
            await identityDb.OpenAsync(ct);
            await using var anchoredForged = new NpgsqlCommand($"SELECT count(*) FROM \"AuditAnchors\" WHERE \"ChainId\" = '{workspaceId}' AND \"EntryId\" = {forgedId}", identityDb);
            Assert.AreEqual(0L, (long)(await anchoredForged.ExecuteScalarAsync(ct))!, "a head that fails its key check is not anchored");
        }
        var forged = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
        Assert.IsFalse(forged.GetProperty("intact").GetBoolean(), forged.ToString());
        Assert.AreEqual(forgedId, forged.GetProperty("firstBrokenEntryId").GetInt64());

        // Removed again, the chain is whole: the forgery left no anchor behind to cry "truncated" for ever.
        await TamperAsync($"DELETE FROM \"AuditEntries\" WHERE \"Id\" = {forgedId}");
        var restored = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
        Assert.IsTrue(restored.GetProperty("intact").GetBoolean(), restored.ToString());
    }

    [TestMethod]
    public async Task A_chain_rewritten_with_recomputed_plain_hashes_is_found()
    {
        var ct = TestContext.CancellationToken;
        var (owner, workspaceId, _) = await WorkspaceWithEventsAsync(ct);
        await AnchorAsync();
        // The attacker edits an entry and recomputes every hash after it with what the database shows (plain SHA-256,
        // marked unkeyed): without the chain key nothing else is possible.
        var chain = await ChainAsync(workspaceId);
        chain[1].Target = "nothing happened";
        var previous = new byte[32];
        var statements = new List<string>();
        foreach (var entry in chain)
        {
            entry.Keyed = false;
            var hash = System.Security.Cryptography.SHA256.HashData([.. previous, .. System.Text.Encoding.UTF8.GetBytes(ClippyBot.Api.Audit.AuditLog.Canonical(entry))]);
            statements.Add($"UPDATE \"AuditEntries\" SET \"Keyed\" = false, \"Target\" = '{entry.Target.Replace("'", "''", StringComparison.Ordinal)}', \"PreviousHash\" = '\\x{Convert.ToHexString(previous)}', \"Hash\" = '\\x{Convert.ToHexString(hash)}' WHERE \"Id\" = {entry.Id}");
            previous = hash;
        }
        await TamperAsync(string.Join("; ", statements));

        var verification = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
        Assert.IsFalse(verification.GetProperty("intact").GetBoolean(), verification.ToString());
        Assert.IsGreaterThanOrEqualTo(1, verification.GetProperty("anchorsChecked").GetInt32());
    }

    [TestMethod]
    public async Task The_database_refuses_an_unkeyed_entry_so_no_plain_hashed_prefix_can_be_forged()
    {
        var ct = TestContext.CancellationToken;
        var (_, workspaceId, _) = await WorkspaceWithEventsAsync(ct);
        var head = (await ChainAsync(workspaceId))[^1];
        await using var connection = new NpgsqlConnection(s_testbed.Api.Settings["ConnectionStrings:apidb"]);
        await connection.OpenAsync(ct);
        await using var insert = new NpgsqlCommand("""
            INSERT INTO "AuditEntries" ("ChainId", "At", "ActorType", "ActorId", "Action", "Target", "Outcome", "IpAddress", "PreviousHash", "Hash", "Keyed")
            VALUES (@chain, now(), 'system', 'forger', 'member.added', 'x', 'success', '', @previous, @previous, false)
            """, connection);
        insert.Parameters.AddWithValue("chain", workspaceId);
        insert.Parameters.AddWithValue("previous", head.Hash);
        var refused = await Assert.ThrowsAsync<PostgresException>(() => insert.ExecuteNonQueryAsync(ct));
        StringAssert.Contains(refused.MessageText, "unkeyed");
    }

    [TestMethod]
    public async Task Identity_keeps_the_anchors_append_only()
    {
        var ct = TestContext.CancellationToken;
        await WorkspaceWithEventsAsync(ct);
        await AnchorAsync();
        await using var connection = new NpgsqlConnection(s_testbed.Identity.Settings["ConnectionStrings:identitydb"]);
        await connection.OpenAsync(ct);
        foreach (var sql in new[] { "UPDATE \"AuditAnchors\" SET \"EntryId\" = 0", "DELETE FROM \"AuditAnchors\"", "TRUNCATE \"AuditAnchors\"" })
        {
            await using var command = new NpgsqlCommand(sql, connection);
            var refused = await Assert.ThrowsAsync<PostgresException>(() => command.ExecuteNonQueryAsync(ct), sql);
            StringAssert.Contains(refused.MessageText, "append-only", sql);
        }
    }

    [TestMethod]
    public async Task Deleting_one_entry_in_the_middle_is_found_at_the_entry_after_it()
    {
        var ct = TestContext.CancellationToken;
        var (owner, workspaceId, _) = await WorkspaceWithEventsAsync(ct);
        var chain = await ChainAsync(workspaceId);
        await TamperAsync($"DELETE FROM \"AuditEntries\" WHERE \"Id\" = {chain[1].Id}");

        var verification = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/workspaces/{workspaceId}/audit/verify", ct);
        Assert.IsFalse(verification.GetProperty("intact").GetBoolean());
        Assert.AreEqual(chain[2].Id, verification.GetProperty("firstBrokenEntryId").GetInt64());
        StringAssert.Contains(verification.GetProperty("reason").GetString(), "removed");
    }

    private static async Task<((HttpClient Client, string Email, string Subject) Owner, Guid WorkspaceId, (HttpClient Client, string Email, string Subject) Viewer)> WorkspaceWithEventsAsync(CancellationToken ct)
    {
        var owner = await s_testbed.NewUserAsync(ct);
        var workspaceId = await ApiTestbed.CreateWorkspaceAsync(owner.Client, "Audited", ct);
        var viewer = await s_testbed.JoinAsync(owner.Client, workspaceId, "viewer", ct);

        using var key = await owner.Client.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/api-keys", new { name = "ci", scopes = new[] { "dataRead" } }, ct);
        var keyId = (await key.Content.ReadFromJsonAsync<JsonElement>(ct)).GetProperty("apiKey").GetProperty("id").GetGuid();
        using var revoke = await owner.Client.DeleteAsync(new Uri($"/api/workspaces/{workspaceId}/api-keys/{keyId}", UriKind.Relative), ct);

        using var denied = await viewer.Client.GetAsync(new Uri($"/api/workspaces/{workspaceId}/audit", UriKind.Relative), ct);
        Assert.AreEqual(HttpStatusCode.Forbidden, denied.StatusCode, "viewers do not read the audit log");
        return (owner, workspaceId, viewer);
    }
}
