using ClippyBot.Security;
namespace ClippyBot.Api.Files;

/// <summary>
/// A file of a workspace. Its content is stored encrypted (StreamCipher) under a per-file key; <see cref="WrappedKey"/> is
/// that key sealed as an envelope under the current data key, so a rotation re-wraps 61 bytes, not the file.
/// </summary>
public sealed class StoredFile
{
    public Guid Id { get; set; }

    public Guid WorkspaceId { get; set; }

    /// <summary>Sanitised display name (no path, no control characters).</summary>
    public required string Name { get; set; }

    public required string ContentType { get; set; }

    /// <summary>Plaintext length in bytes.</summary>
    public long Size { get; set; }

    public required byte[] WrappedKey { get; set; }

    public Guid KeyId { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public required string CreatedBy { get; set; }
}

/// <summary>Configuration section <c>Files</c>.</summary>
public sealed class FileStorageOptions
{
    public const string SectionName = "Files";

    /// <summary>Folder of the local store; empty = <c>files</c> under the service's content root.</summary>
    public string Root { get; set; } = "";

    public long MaxFileBytes { get; set; } = 1L << 30;

    public long WorkspaceQuotaBytes { get; set; } = 10L << 30;

    /// <summary>Accepted content types; <c>*</c> would allow anything (not recommended).</summary>
    public List<string> AllowedContentTypes { get; set; } =
    [
        "application/pdf", "application/json", "application/zip", "application/octet-stream", "text/plain", "text/csv", "text/markdown",
        "image/png", "image/jpeg", "image/gif", "image/webp",
    ];
}
