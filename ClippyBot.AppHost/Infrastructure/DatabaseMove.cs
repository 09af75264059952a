using Npgsql;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// Moves a database that older versions kept in another cluster (<c>subjectkeysdb</c> used to live in the main one):
/// dump, restore in one transaction, compare, then drop the old copy — a copy left behind would outlive the retention it
/// was moved to get. Once the new home holds the data it is the only authority: an old copy that turns up again (a crash
/// between the comparison and the drop, or a point-in-time restore of the old cluster to a moment before the move) is
/// dropped when it holds nothing the new home lacks, and refused loudly otherwise.
/// </summary>
public static class DatabaseMove
{
    /// <param name="binDirectory">The target cluster's own server binaries (a pg_dump older than the server cannot dump it).</param>
    /// <returns>True when rows were moved (the caller re-applies the roles so the restored objects change hands).</returns>
    public static async Task<bool> MoveIfLeftBehindAsync(string fromSuperuser, string toSuperuser, string database, string? binDirectory, CancellationToken ct)
    {
        var from = new NpgsqlConnectionStringBuilder(fromSuperuser) { Database = "postgres", Pooling = false };
        var to = new NpgsqlConnectionStringBuilder(toSuperuser) { Database = database, Pooling = false };
        if (await ScalarAsync(from, $"SELECT count(*) FROM pg_database WHERE datname = '{database}'", ct) == 0)
        {
            return false;
        }
        var source = new NpgsqlConnectionStringBuilder(from.ConnectionString) { Database = database };
        if (await ScalarAsync(to, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", ct) > 0)
        {
            // Moved before: the old copy is stale. Dropped if it holds no more rows than the new home in any table.
            if (await LargerTablesAsync(source, to, ct) is { Count: > 0 } larger)
            {
                throw new InvalidOperationException(
                    $"{database} exists in both clusters and the old copy holds rows the new one lacks ({string.Join(", ", larger)}); " +
                    "neither is changed: compare them and drop the one that is wrong (docs/backup.md, Crypto-shredding).");
            }
            await DropAsync(from, database, ct);
            return false;
        }
        var tools = ClippyBot.Backup.PostgresTools.Locate(binDirectory);
        var dump = Path.Combine(Path.GetTempPath(), $"clippybot-move-{database}-{Guid.NewGuid():N}.dump");
        try
        {
            // Owner-only before anything is written: it holds the database's rows.
            ClippyBot.Security.OwnerOnlyFile.Write(dump, "");
            await tools.DumpAsync(from, database, dump, ct);
            // One transaction: a restore that fails (or is stopped) leaves the new home empty, so the next start moves again.
            await tools.RestoreAsync(to, database, dump, ct, singleTransaction: true);
        }
        finally
        {
            File.Delete(dump);
        }
        var differing = (await LargerTablesAsync(source, to, ct)).Union(await LargerTablesAsync(to, source, ct), StringComparer.Ordinal).ToList();
        if (differing.Count > 0)
        {
            // Emptied again, so the next start tries afresh instead of trusting a copy that differs.
            await ExecuteAsync(to, "DROP SCHEMA public CASCADE; CREATE SCHEMA public", ct);
            throw new InvalidOperationException($"Moving {database}: the copy of {string.Join(", ", differing)} does not hold the same rows; the old database is kept.");
        }
        await DropAsync(from, database, ct);
        return true;
    }

    /// <summary>Tables of <paramref name="first"/> with more rows than the same table in <paramref name="second"/> (missing there counts as 0).</summary>
    private static async Task<List<string>> LargerTablesAsync(NpgsqlConnectionStringBuilder first, NpgsqlConnectionStringBuilder second, CancellationToken ct)
    {
        var present = (await TablesAsync(second, ct)).ToHashSet(StringComparer.Ordinal);
        var larger = new List<string>();
        foreach (var table in await TablesAsync(first, ct))
        {
            var sql = $"SELECT count(*) FROM public.\"{table.Replace("\"", "\"\"", StringComparison.Ordinal)}\"";
            if (await ScalarAsync(first, sql, ct) > (present.Contains(table) ? await ScalarAsync(second, sql, ct) : 0))
            {
                larger.Add(table);
            }
        }
        return larger;
    }

    private static Task DropAsync(NpgsqlConnectionStringBuilder server, string database, CancellationToken ct) =>
        ExecuteAsync(server, $"DROP DATABASE \"{database}\" WITH (FORCE)", ct);

    private static async Task ExecuteAsync(NpgsqlConnectionStringBuilder server, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<List<string>> TablesAsync(NpgsqlConnectionStringBuilder server, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        var tables = new List<string>();
        while (await reader.ReadAsync(ct))
        {
            tables.Add(reader.GetString(0));
        }
        return tables;
    }

    private static async Task<long> ScalarAsync(NpgsqlConnectionStringBuilder server, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(server.ConnectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}
