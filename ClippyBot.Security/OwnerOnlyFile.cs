namespace ClippyBot.Security;

/// <summary>
/// Files that hold secrets (passwords, passphrases, configuration naming them): readable by their owner alone. They may
/// sit in a folder another account owns (pgBackRest's, owned by <c>postgres</c>), so a link planted there is never
/// followed: writes go to a fresh name created exclusively, then renamed into place (a rename replaces a link, it does
/// not write through it); reads refuse a link.
/// </summary>
public static class OwnerOnlyFile
{
    /// <summary>Created owner-only from the start, then renamed into place: never readable by others, never half-written.</summary>
    public static void Write(string path, string text)
    {
        var pending = $"{path}.{Guid.NewGuid():N}.tmp";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var stream = new FileStream(pending, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
        }
        File.Move(pending, path, overwrite: true);
    }

    public static string[] ReadAllLines(string path) =>
        new FileInfo(path).LinkTarget is { } target
            ? throw new IOException($"'{path}' is a link (to '{target}'); a secret's file must be a plain file.")
            : File.ReadAllLines(path);
}
