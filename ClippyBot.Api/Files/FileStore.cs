namespace ClippyBot.Api.Files;

/// <summary>
/// Where encrypted file bodies live. Writes go to a staging object that becomes visible only when committed, so an
/// interrupted upload never leaves a partial file in place. The local filesystem implements it today; an S3/R2 store would
/// map staging to a multipart upload completed on commit.
/// </summary>
public interface IFileStore
{
    /// <summary>A new staging object to write the encrypted body into.</summary>
    IStagedFile Stage();

    Stream OpenRead(Guid workspaceId, Guid fileId);

    void Delete(Guid workspaceId, Guid fileId);
}

public interface IStagedFile : IAsyncDisposable
{
    Stream Content { get; }

    /// <summary>Makes the staged body the file's content (atomic); disposing an uncommitted stage deletes it.</summary>
    Task CommitAsync(Guid workspaceId, Guid fileId, CancellationToken ct);
}

public sealed class LocalFileStore(string root) : IFileStore
{
    public IStagedFile Stage()
    {
        var staging = Path.Combine(root, ".staging");
        Directory.CreateDirectory(staging);
        return new Staged(this, Path.Combine(staging, Guid.NewGuid().ToString("N")));
    }

    public Stream OpenRead(Guid workspaceId, Guid fileId) =>
        new FileStream(PathOf(workspaceId, fileId), FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan);

    public void Delete(Guid workspaceId, Guid fileId) => File.Delete(PathOf(workspaceId, fileId));

    private string PathOf(Guid workspaceId, Guid fileId) => Path.Combine(root, workspaceId.ToString("N"), fileId.ToString("N"));

    private sealed class Staged(LocalFileStore store, string path) : IStagedFile
    {
        private bool _committed;

        public Stream Content { get; } = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 64 * 1024, FileOptions.Asynchronous);

        public async Task CommitAsync(Guid workspaceId, Guid fileId, CancellationToken ct)
        {
            await Content.FlushAsync(ct);
            await Content.DisposeAsync();
            var target = store.PathOf(workspaceId, fileId);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            // Same filesystem: a rename is atomic, so readers see the whole file or none.
            File.Move(path, target);
            _committed = true;
        }

        public async ValueTask DisposeAsync()
        {
            await Content.DisposeAsync();
            if (!_committed)
            {
                File.Delete(path);
            }
        }
    }
}
