namespace ClippyBot.Tests.Rig;

public static class Repository
{
    /// <summary>The repository root: the folder above the test binaries that holds ClippyBot.sln.</summary>
    public static string Root { get; } = Find();

    private static string Find()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "ClippyBot.sln")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException("The repository root (ClippyBot.sln) was not found above the test binaries.");
    }
}
