using ClippyBot.Backup;
using ClippyBot.Backup.PointInTime;
using ClippyBot.Security;

namespace ClippyBot.Tests.Security;

/// <summary>Secrets' files in folders another account owns, and paths that reach a shell (found by the session's review).</summary>
[TestClass]
public sealed class OwnerOnlyFileTests
{
    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void A_link_planted_where_a_secret_is_written_is_replaced_not_written_through_and_never_read()
    {
        var folder = Directory.CreateTempSubdirectory("clippybot-owner-only-").FullName;
        try
        {
            var victim = Path.Combine(folder, "victim");
            File.WriteAllText(victim, "root's file");
            var secret = Path.Combine(folder, "cipher-pass");
            File.CreateSymbolicLink(secret, victim);
            Assert.ThrowsExactly<IOException>(() => OwnerOnlyFile.ReadAllLines(secret), "a link is never read as a secret");

            OwnerOnlyFile.Write(secret, "passphrase");

            Assert.AreEqual("root's file", File.ReadAllText(victim), "the link's target is untouched");
            Assert.IsNull(new FileInfo(secret).LinkTarget, "the link itself was replaced");
            Assert.AreEqual("passphrase", File.ReadAllText(secret));
            Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(secret));
            Assert.AreEqual(2, Directory.GetFiles(folder).Length, "no temporary file left behind");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    [DataRow("/srv/r$(touch /tmp/pwned)")]
    [DataRow("/srv/r`id`")]
    [DataRow("/srv/with space")]
    [DataRow("/srv/quote'd")]
    [DataRow("/srv/double\"quote")]
    [DataRow("/srv/new\nline")]
    [DataRow("")]
    public void A_path_a_shell_would_not_read_literally_is_refused(string path) =>
        Assert.ThrowsExactly<BackupException>(() => PgBackRest.ShellSafe(path));

    [TestMethod]
    public void Ordinary_folders_pass() =>
        Assert.AreEqual("/var/lib/clippybot/0a1b/postgres/data", PgBackRest.ShellSafe("/var/lib/clippybot/0a1b/postgres/data"));
}
