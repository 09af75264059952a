using ClippyBot.AppHost.Infrastructure;

namespace ClippyBot.Tests.Rig;

/// <summary>
/// Reference tools some tests compare against. The README's test command must pass on a fresh machine, so a missing
/// tool is installed from Debian's packages when we are root; otherwise the failure says what to install.
/// </summary>
public static class OsPackages
{
    private static readonly SemaphoreSlim Gate = new(1, 1);

    public static async Task RequireCommandAsync(string command, string package)
    {
        if (IsOnPath(command))
        {
            return;
        }
        await Gate.WaitAsync();
        try
        {
            if (IsOnPath(command))
            {
                return;
            }
            if (!Environment.IsPrivilegedProcess)
            {
                Assert.Fail($"'{command}' is missing: install Debian's '{package}' package (apt-get install -y {package}).");
            }
            ProcessRunner.Run("apt-get", ["update", "-qq"], TimeSpan.FromMinutes(5));
            ProcessRunner.Run("apt-get", ["install", "-y", "-qq", package], TimeSpan.FromMinutes(5));
        }
        finally
        {
            Gate.Release();
        }
    }

    private static bool IsOnPath(string command) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, command)));
}
