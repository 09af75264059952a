using System.Diagnostics;
using System.Globalization;

namespace ClippyBot.Backup.PointInTime;

/// <summary>The result of a restore drill: one line for the log, the dashboard and an alert.</summary>
public sealed record DrillResult(int Repository, string Backup, TimeSpan RecoveryTime, TimeSpan? NewestCommitAge, IReadOnlyDictionary<string, long> Migrations)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"drill passed: repository {Repository}, backup {Backup} + WAL restored and started in {RecoveryTime.TotalSeconds:0.0} s (RTO); " +
        $"newest restored commit {(NewestCommitAge is { } age ? $"{age.TotalSeconds:0} s" : "unknown")} before now (RPO); " +
        $"databases: {string.Join(", ", Migrations.Select(m => $"{m.Key} ({m.Value} migrations)"))}");
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
    public static async Task<DrillResult> DrillAsync(PgBackRest pgBackRest, int repository, IReadOnlyList<string> expectedDatabases, TimeProvider time, CancellationToken ct)
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
            }
            await cluster.StopAsync();
            return new DrillResult(repository, newest.Label, recoveryTime, newestCommitAge, migrations);
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

    private static void PrepareEmptyFolder(string path)
    {
        if (Directory.Exists(path) && Directory.EnumerateFileSystemEntries(path).Any())
        {
            throw new BackupException($"'{path}' is not empty: restore into a new folder.");
        }
        ServiceUser.Own(path);
    }
}
