using ClippyBot.Backup.PointInTime;

namespace ClippyBot.Tests.Rig;

/// <summary>
/// A throwaway cluster archiving its WAL through pgBackRest into two encrypted repositories (two folders beside it), with a
/// full backup in each: what the AppHost's local mode runs, for tests that restore to a moment.
/// </summary>
public sealed record ArchivingPostgres(TestPostgres Live, PgBackRest PgBackRest, string[] Repositories) : IAsyncDisposable
{
    public static async Task<ArchivingPostgres> StartAsync(CancellationToken ct)
    {
        PgBackRest pgBackRest = null!;
        string[] repositories = null!;
        var live = await TestPostgres.StartAsync(ct, (cluster, port) =>
        {
            repositories = [Path.Combine(cluster.DataRoot, "repo1"), Path.Combine(cluster.DataRoot, "repo2")];
            pgBackRest = PgBackRest.Configure(new PgBackRestLayout(
                Path.Combine(cluster.DataRoot, "pgbackrest") /* Root */, repositories, cluster.DataDirectory, cluster.SocketDirectory, port, TimeSpan.FromDays(30)));
            return pgBackRest.ArchiveSettings(cluster.SocketDirectory);
        });
        await pgBackRest.EnsureStanzaAsync(ct);
        await pgBackRest.BackupAsync("full", 1, ct);
        await pgBackRest.BackupAsync("full", 2, ct);
        return new ArchivingPostgres(live, pgBackRest, repositories);
    }

    /// <summary>pgBackRest's own folder: configuration, passphrases (<c>cipher-pass</c>, one a line), spool, log, locks.</summary>
    public string Root => Path.Combine(Live.Cluster.DataRoot, "pgbackrest");

    /// <summary>Waits until the database clock is past the newest backup's end (pgBackRest records it to the second): a moment restorable to.</summary>
    public async Task WaitPastNewestBackupAsync(string connectionString, CancellationToken ct)
    {
        var newestBackup = (await PgBackRest.InfoAsync(ct)).Max(b => b.Stopped);
        await Poll.UntilAsync(async () => await ClockAsync(connectionString, ct) > newestBackup.UtcDateTime.AddSeconds(2),
            TimeSpan.FromSeconds(10), "two seconds past the newest backup", ct);
    }

    /// <summary>The database's own clock: the moment a restore targets is the server's, not this process's.</summary>
    public static async Task<DateTime> ClockAsync(string connectionString, CancellationToken ct)
    {
        await using var connection = new Npgsql.NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new Npgsql.NpgsqlCommand("SELECT clock_timestamp()", connection);
        return (DateTime)(await command.ExecuteScalarAsync(ct))!;
    }

    public ValueTask DisposeAsync() => Live.DisposeAsync();
}
