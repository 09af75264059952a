using System.Diagnostics;
using System.Globalization;

namespace ClippyBot.Backup.PointInTime;

/// <summary>The result of a restore drill: one line for the log, the dashboard and an alert.</summary>
/// <param name="ComparedTables">Tables whose row counts were compared with the live cluster's (null: not compared).</param>
/// <param name="LargestGap">The largest difference found, as "database.table: restored/live".</param>
public sealed record DrillResult(int Repository, string Backup, TimeSpan RecoveryTime, TimeSpan? NewestCommitAge, IReadOnlyDictionary<string, long> Migrations,
    int? ComparedTables = null, string? LargestGap = null)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"drill passed: repository {Repository}, backup {Backup} + WAL restored and started in {RecoveryTime.TotalSeconds:0.0} s (RTO); " +
        $"newest restored commit {(NewestCommitAge is { } age ? $"{age.TotalSeconds:0} s" : "unknown")} before now (RPO); " +
        $"databases: {string.Join(", ", Migrations.Select(m => $"{m.Key} ({m.Value} migrations)"))}; {RowCounts}");

    private string RowCounts => ComparedTables is { } tables
        ? string.Create(CultureInfo.InvariantCulture, $"row counts of {tables} tables within the window of the live ones (largest gap {LargestGap ?? "none"})")
        : "row counts not compared with the live cluster";
}

/// <summary>Point-in-time restores and restore drills on top of <see cref="PgBackRest"/> (docs/backup.md).</summary>
public static class Recovery
{
    /// <summary>
    /// Restores the cluster as it was at <paramref name="target"/> into <paramref name="into"/> (new or empty), starts it to
    /// prove it works, lists its databases and stops it again.
    /// </summary>
    public static async Task<IReadOnlyList<string>> RestoreToAsync(PgBackRest pgBackRest, int repository, DateTimeOffset target, string into, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(pgBackRest);
        PrepareEmptyFolder(into);
        await pgBackRest.RestoreAsync(into, repository, target, ct);
        await using var cluster = await RestoredCluster.StartAsync(into, ct);
        var databases = await cluster.DatabasesAsync(ct);
        await cluster.StopAsync();
        return databases;
    }

    /// <summary>
    /// Restores the newest backup plus all archived WAL into a scratch folder, starts it, checks every database (each named
    /// one exists; each has its schema migrations), measures RPO and RTO, and deletes the scratch cluster.
    /// </summary>
    /// <param name="compareWithLive">Also compare every table's row count with the live cluster's (<see cref="RowCountsMatch"/>).</param>
    public static async Task<DrillResult> DrillAsync(PgBackRest pgBackRest, int repository, IReadOnlyList<string> expectedDatabases, TimeProvider time, CancellationToken ct,
        bool compareWithLive = true)
    {
        ArgumentNullException.ThrowIfNull(pgBackRest);
        ArgumentNullException.ThrowIfNull(time);
        var backups = await pgBackRest.InfoAsync(ct);
        var newest = backups.LastOrDefault(b => b.Repository == repository)
            ?? throw new BackupException($"Repository {repository} holds no backup to drill with.");
        var scratch = Directory.CreateTempSubdirectory("clippybot-drill-").FullName;
        try
        {
            ServiceUser.Own(scratch);
            var data = Path.Combine(scratch, "data");
            PrepareEmptyFolder(data);
            var clock = Stopwatch.StartNew();
            await pgBackRest.RestoreAsync(data, repository, target: null, ct);
            await using var cluster = await RestoredCluster.StartAsync(data, ct);
            var recoveryTime = clock.Elapsed;

            var replayed = await cluster.QueryAsync("postgres", "SELECT COALESCE(extract(epoch FROM pg_last_xact_replay_timestamp())::text, '')", ct);
            TimeSpan? newestCommitAge = double.TryParse(replayed, NumberStyles.Float, CultureInfo.InvariantCulture, out var epoch)
                ? time.GetUtcNow() - DateTimeOffset.FromUnixTimeMilliseconds((long)(epoch * 1000))
                : null;
            var databases = await cluster.DatabasesAsync(ct);
            var missing = expectedDatabases.Except(databases, StringComparer.Ordinal).ToList();
            if (missing.Count > 0)
            {
                throw new BackupException($"drill failed: the restored cluster has no database {string.Join(", ", missing)}.");
            }
            var migrations = new SortedDictionary<string, long>(StringComparer.Ordinal);
            var (compared, largestGap) = (0, (Gap: -1L, Text: (string?)null));
            foreach (var database in databases)
            {
                var hasHistory = await cluster.QueryAsync(database, "SELECT to_regclass('public.\"__EFMigrationsHistory\"') IS NOT NULL", ct) == "t";
                var count = hasHistory ? long.Parse(await cluster.QueryAsync(database, "SELECT count(*) FROM \"__EFMigrationsHistory\"", ct), CultureInfo.InvariantCulture) : 0;
                if (count == 0 && expectedDatabases.Contains(database, StringComparer.Ordinal))
                {
                    throw new BackupException($"drill failed: the restored {database} has no schema migrations.");
                }
                migrations[database] = count;
                await CheckAuditChainsAsync(cluster, database, ct);
                if (compareWithLive)
                {
                    var gaps = await CompareRowCountsAsync(cluster, pgBackRest.Live, database, ct);
                    compared += gaps.Count;
                    foreach (var (table, restored, live) in gaps.Where(g => Math.Abs(g.Live - g.Restored) > largestGap.Gap))
                    {
                        largestGap = (Math.Abs(live - restored), string.Create(CultureInfo.InvariantCulture, $"{database}.{table}: {restored}/{live}"));
                    }
                }
            }
            await cluster.StopAsync();
            return new DrillResult(repository, newest.Label, recoveryTime, newestCommitAge, migrations,
                compareWithLive ? compared : null, largestGap.Gap > 0 ? largestGap.Text : null);
        }
        finally
        {
            try
            {
                Directory.Delete(scratch, recursive: true);
            }
            catch (IOException)
            {
                // A scratch folder left behind is harmless (it is under the temp folder); the drill's result stands.
            }
        }
    }

    /// <summary>
    /// A restored audit log must still be one unbroken chain per workspace: each entry names the hash of the one before it
    /// (the first names 32 zero bytes). The drill holds no chain key, so it checks the links, not the keyed hashes — a cut,
    /// a lost or a reordered entry in the restore shows; the Api's <c>/verify</c> checks the keys.
    /// </summary>
    private static async Task CheckAuditChainsAsync(RestoredCluster cluster, string database, CancellationToken ct)
    {
        if (await cluster.QueryAsync(database, "SELECT to_regclass('public.\"AuditEntries\"') IS NOT NULL", ct) != "t")
        {
            return;
        }
        var broken = await cluster.QueryAsync(database, """
            SELECT count(*) FROM (
                SELECT "PreviousHash", COALESCE(lag("Hash") OVER (PARTITION BY "ChainId" ORDER BY "Id"), '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea) AS expected
                FROM "AuditEntries") links
            WHERE "PreviousHash" <> expected
            """, ct);
        if (broken != "0")
        {
            throw new BackupException($"drill failed: the restored {database} has {broken} audit entries whose link to the previous entry does not hold.");
        }
    }

    /// <summary>
    /// The expected window between a restored table and the live one: what the live one may have gained or lost since the
    /// newest archived segment (RPO ≤ 60 s) — at least <see cref="RowCountSlack"/> rows, or <see cref="RowCountFraction"/>
    /// of the table. More means rows reach the live database that no backup holds (archiving stalled, unlogged tables,
    /// writes into another cluster) or a restore that lost data.
    /// </summary>
    public const long RowCountSlack = 100;

    public const double RowCountFraction = 0.02;

    public static bool RowCountsMatch(long restored, long live) =>
        Math.Abs(live - restored) <= Math.Max(RowCountSlack, (long)Math.Ceiling(RowCountFraction * Math.Max(live, restored)));

    // Exact counts of every table of the public schema in one statement (query_to_xml runs one count per table).
    private const string RowCountsSql = """
        SELECT table_name || '|' || (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I.%I', table_schema, table_name), false, true, '')))[1]::text
        FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1
        """;

    private static async Task<List<(string Table, long Restored, long Live)>> CompareRowCountsAsync(
        RestoredCluster cluster, PgBackRest.LiveCluster live, string database, CancellationToken ct)
    {
        static Dictionary<string, long> Parse(string output) => output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('|'))
            .ToDictionary(p => p[0], p => long.Parse(p[1], CultureInfo.InvariantCulture), StringComparer.Ordinal);
        var restored = Parse(await cluster.QueryAsync(database, RowCountsSql, ct));
        Dictionary<string, long> current;
        try
        {
            current = Parse(await live.QueryAsync(database, RowCountsSql, ct));
        }
        catch (BackupException e)
        {
            throw new BackupException($"drill failed: the live {database} could not be read to compare row counts ({e.Message.ReplaceLineEndings(" ")}); drill with --compare-live no when the live cluster is down.", e);
        }
        var gaps = restored.Keys.Union(current.Keys, StringComparer.Ordinal)
            .Select(t => (Table: t, Restored: restored.GetValueOrDefault(t), Live: current.GetValueOrDefault(t)))
            .ToList();
        var outside = gaps.Where(g => !RowCountsMatch(g.Restored, g.Live)).ToList();
        if (outside.Count > 0)
        {
            throw new BackupException(string.Create(CultureInfo.InvariantCulture,
                $"drill failed: {outside.Count} table(s) of the restored {database} are outside the expected window of the live ones " +
                $"({string.Join(", ", outside.Take(5).Select(g => $"{g.Table}: {g.Restored} restored, {g.Live} live"))}): rows reach the live database that no backup holds, or the restore lost them."));
        }
        return gaps;
    }

    private static void PrepareEmptyFolder(string path)
    {
        if (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
        {
            throw new BackupException($"'{path}' is not empty: restore into a new folder.");
        }
        ServiceUser.Own(path);
    }
}
