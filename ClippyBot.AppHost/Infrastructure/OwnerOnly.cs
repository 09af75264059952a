namespace ClippyBot.AppHost.Infrastructure;

/// <summary>Restricts files holding credentials to their owner (no-op where Unix modes do not exist).</summary>
internal static class OwnerOnly
{
    public static void File(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            System.IO.File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }

    public static void Directory(string path)
    {
        if (!OperatingSystem.IsWindows())
        {
            System.IO.File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }
}
