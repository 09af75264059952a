using Npgsql;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// Moves a database that older versions kept in another cluster (<c>subjectkeysdb</c> used to live in the main one):
/// dump, restore, compare, then drop the old copy — a copy left behind would outlive the retention it was moved to get.
/// Runs once: when the new home already holds tables, or the old one has no such database, nothing happens.
/// </summary>
public static class DatabaseMove
{
    /// <returns>True when rows were moved (the caller re-applies the roles so the restored objects change hands).</returns>
    public static async Task<bool> MoveIfLeftBehindAsync(string fromSuperuser, string toSuperuser, string database, CancellationToken ct)
    {
        var from = new NpgsqlConnectionStringBuilder(fromSuperuser) { Database = "postgres", Pooling = false };
        var to = new NpgsqlConnectionStringBuilder(toSuperuser) { Database = database, Pooling = false };
        if (await ScalarAsync(from, $"SELECT count(*) FROM pg_database WHERE datname = '{database}'", ct) == 0
            || await ScalarAsync(to, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", ct) > 0)
        {
            return false;
        }
        var tools = ClippyBot.Backup.PostgresTools.Locate(null);
        var dump = Path.Combine(Path.GetTempPath(), $"clippybot-move-{database}-{Guid.NewGuid():N}.dump");
        try
        {
            // Owner-only before anything is written: it holds the database's rows.
            ClippyBot.Security.OwnerOnlyFile.Write(dump, "");
            await tools.DumpAsync(from, database, dump, ct);
            await tools.RestoreAsync(to, database, dump, ct);
        }
        finally
        {
            File.Delete(dump);
        }
        var source = new NpgsqlConnectionStringBuilder(from.ConnectionString) { Database = database };
        foreach (var table in await TablesAsync(source, ct))
        {
            var sql = $"SELECT count(*) FROM public.\"{table}\"";
            if (await ScalarAsync(source, sql, ct) != await ScalarAsync(to, sql, ct))
            {
                throw new InvalidOperationException($"Moving {database}: the copy of {table} does not hold the same rows; the old database is kept.");
            }
        }
        await using var connection = new NpgsqlConnection(from.ConnectionString);
        await connection.OpenAsync(ct);
        await using var drop = new NpgsqlCommand($"DROP DATABASE {database} WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync(ct);
        return true;
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
