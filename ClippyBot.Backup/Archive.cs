using System.Formats.Tar;
using System.IO.Pipelines;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using ClippyBot.Security;
using Npgsql;

namespace ClippyBot.Backup;

public sealed record DatabaseEntry(string Name, string File, long Bytes, string Sha256);

public sealed record ArchiveManifest(int Format, Guid ArchiveId, DateTimeOffset CreatedAt, List<DatabaseEntry> Databases);

/// <summary>
/// The archive (docs/backup.md): <c>"CBBK" | version(1) | archive id(16)</c>, then a <see cref="StreamCipher"/> stream (keyed by
/// the archive key, bound to the archive id) of a tar holding <c>manifest.json</c> and one <c>pg_dump</c> custom-format file per
/// database. Restoring decrypts and checks everything (every chunk's tag, the final chunk, every checksum) into a private
/// temporary folder before the target server is touched.
/// </summary>
public static partial class Archive
{
    private static readonly byte[] Magic = "CBBK"u8.ToArray();
    private const byte Version = 1;
    private const int PreambleSize = 4 + 1 + 16;

    public static async Task<ArchiveManifest> CreateAsync(PostgresTools tools, string serverConnection, IReadOnlyList<string> databases, string outPath, byte[] key, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tools);
        var server = Server(serverConnection);
        foreach (var name in databases.Where(n => !DatabaseName().IsMatch(n)))
        {
            throw new BackupException($"'{name}' is not a database name this tool accepts (letters, digits, _).");
        }
        if (File.Exists(outPath))
        {
            throw new BackupException($"{outPath} already exists; choose another name (an archive is never overwritten).");
        }
        var work = Directory.CreateTempSubdirectory("clippybot-backup-");
        var partial = outPath + ".partial";
        try
        {
            var entries = new List<DatabaseEntry>();
            foreach (var database in databases)
            {
                var file = Path.Combine(work.FullName, database + ".dump");
                await tools.DumpAsync(server, database, file, ct);
                entries.Add(new DatabaseEntry(database, $"databases/{database}.dump", new FileInfo(file).Length, await Sha256Async(file, ct)));
            }
            var manifest = new ArchiveManifest(1, Guid.NewGuid(), DateTimeOffset.UtcNow, entries);

            await using (var archive = new FileStream(partial, FileMode.CreateNew, FileAccess.Write))
            {
                var preamble = new byte[PreambleSize];
                Magic.CopyTo(preamble, 0);
                preamble[4] = Version;
                manifest.ArchiveId.TryWriteBytes(preamble.AsSpan(5));
                await archive.WriteAsync(preamble, ct);

                // tar → encryption → file, streamed through a pipe: no plaintext copy of the archive anywhere.
                var pipe = new Pipe();
                var producer = Task.Run(async () =>
                {
                    await using var plain = pipe.Writer.AsStream();
                    await using var tar = new TarWriter(plain, TarEntryFormat.Pax, leaveOpen: true);
                    var json = JsonSerializer.SerializeToUtf8Bytes(manifest, JsonOptions);
                    await tar.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, "manifest.json") { DataStream = new MemoryStream(json) }, ct);
                    foreach (var entry in entries)
                    {
                        await tar.WriteEntryAsync(Path.Combine(work.FullName, entry.Name + ".dump"), entry.File, ct);
                    }
                }, ct);
                await using (var source = pipe.Reader.AsStream())
                {
                    // On failure, closing the reader makes the producer's next write fail, so it cannot hang.
                    await StreamCipher.EncryptAsync(source, archive, key, manifest.ArchiveId, ct);
                }
                await producer;
            }
            // Only a complete archive gets the final name.
            File.Move(partial, outPath);
            return manifest;
        }
        finally
        {
            File.Delete(partial);
            work.Delete(recursive: true);
        }
    }

    public static async Task<ArchiveManifest> VerifyAsync(string archivePath, byte[] key, CancellationToken ct)
    {
        var work = Directory.CreateTempSubdirectory("clippybot-restore-");
        try
        {
            return await OpenAsync(archivePath, key, work.FullName, ct);
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    public static async Task<ArchiveManifest> RestoreAsync(PostgresTools tools, string archivePath, string serverConnection, byte[] key, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(tools);
        var server = Server(serverConnection);
        var work = Directory.CreateTempSubdirectory("clippybot-restore-");
        var created = new List<string>();
        try
        {
            var manifest = await OpenAsync(archivePath, key, work.FullName, ct);
            await using var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = "postgres", Pooling = false }.ConnectionString);
            await admin.OpenAsync(ct);
            foreach (var database in manifest.Databases)
            {
                await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = @n", admin);
                exists.Parameters.AddWithValue("n", database.Name);
                if (await exists.ExecuteScalarAsync(ct) is not null)
                {
                    throw new BackupException($"Database {database.Name} already exists on the target server; restore into an empty cluster, or drop it first. Nothing was restored.");
                }
            }
            try
            {
                foreach (var database in manifest.Databases)
                {
                    await using (var create = new NpgsqlCommand($"CREATE DATABASE \"{database.Name}\"", admin))
                    {
                        await create.ExecuteNonQueryAsync(ct);
                    }
                    created.Add(database.Name);
                    await tools.RestoreAsync(server, database.Name, Path.Combine(work.FullName, database.File), ct);
                }
            }
            catch
            {
                // All or nothing: a failed restore leaves no half-restored database behind.
                foreach (var name in created)
                {
                    await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", admin);
                    await drop.ExecuteNonQueryAsync(CancellationToken.None);
                }
                throw;
            }
            return manifest;
        }
        finally
        {
            work.Delete(recursive: true);
        }
    }

    /// <summary>Decrypts and unpacks into <paramref name="work"/>, checking every tag and checksum; throws before anything is restored.</summary>
    private static async Task<ArchiveManifest> OpenAsync(string archivePath, byte[] key, string work, CancellationToken ct)
    {
        if (!File.Exists(archivePath))
        {
            throw new BackupException($"{archivePath} does not exist.");
        }
        await using var archive = new FileStream(archivePath, FileMode.Open, FileAccess.Read);
        var preamble = new byte[PreambleSize];
        if (await archive.ReadAtLeastAsync(preamble, PreambleSize, throwOnEndOfStream: false, ct) != PreambleSize
            || !preamble.AsSpan(0, 4).SequenceEqual(Magic) || preamble[4] != Version)
        {
            throw new BackupException($"{archivePath} is not a ClippyBot backup archive (or a newer version of one).");
        }
        var archiveId = new Guid(preamble.AsSpan(5, 16));
        var pipe = new Pipe();
        var decrypt = Task.Run(async () =>
        {
            await using var plain = pipe.Writer.AsStream();
            await StreamCipher.DecryptAsync(archive, plain, key, archiveId, ct);
        }, ct);
        ArchiveManifest? manifest = null;
        try
        {
            await using var reader = new TarReader(pipe.Reader.AsStream());
            while (await reader.GetNextEntryAsync(copyData: false, ct) is { } entry)
            {
                if (entry.Name == "manifest.json" && manifest is null)
                {
                    manifest = await JsonSerializer.DeserializeAsync<ArchiveManifest>(entry.DataStream!, JsonOptions, ct);
                    continue;
                }
                if (manifest?.Databases.SingleOrDefault(d => d.File == entry.Name) is not { } expected || entry.EntryType != TarEntryType.RegularFile)
                {
                    throw new BackupException($"The archive holds an unexpected entry '{entry.Name}'. Nothing was restored.");
                }
                var target = Path.Combine(work, expected.File);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                await entry.ExtractToFileAsync(target, overwrite: false, ct);
            }
            await decrypt;
        }
        catch (Exception e) when (e is CryptographicException or InvalidDataException or EndOfStreamException || decrypt.IsFaulted)
        {
            var cause = decrypt.IsFaulted ? decrypt.Exception!.GetBaseException() : e;
            throw new BackupException($"The archive does not open with this key, or it is damaged ({cause.GetType().Name}: {cause.Message}). Nothing was restored.", cause);
        }
        if (manifest is null || manifest.ArchiveId != archiveId || manifest.Format != 1)
        {
            throw new BackupException("The archive has no valid manifest. Nothing was restored.");
        }
        foreach (var database in manifest.Databases)
        {
            var file = Path.Combine(work, database.File);
            if (!File.Exists(file) || new FileInfo(file).Length != database.Bytes || await Sha256Async(file, ct) != database.Sha256)
            {
                throw new BackupException($"The dump of {database.Name} is missing or does not match its checksum. Nothing was restored.");
            }
        }
        return manifest;
    }

    private static NpgsqlConnectionStringBuilder Server(string connection)
    {
        try
        {
            return new NpgsqlConnectionStringBuilder(connection);
        }
        catch (ArgumentException e)
        {
            throw new BackupException($"--server is not a valid connection string: {e.Message}");
        }
    }

    private static async Task<string> Sha256Async(string file, CancellationToken ct)
    {
        await using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct));
    }

    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    [GeneratedRegex("^[A-Za-z0-9_]{1,63}$")]
    private static partial Regex DatabaseName();
}
