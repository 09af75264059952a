namespace ClippyBot.Security;

/// <summary>Files that hold secrets (passwords, passphrases, configuration naming them): readable by their owner alone.</summary>
public static class OwnerOnlyFile
{
    /// <summary>Created owner-only from the start, then renamed into place: never readable by others, never half-written.</summary>
    public static void Write(string path, string text)
    {
        var pending = path + ".tmp";
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
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
}
