using ClippyBot.Backup;

namespace ClippyBot.Tests.Unit.Foundation;

/// <summary>
/// The operator's pitr and drill commands find pgBackRest's configuration through <c>.clippybot/pgbackrest-config</c> in
/// any folder above them: a pointer someone else could have planted or changed must not steer a restore.
/// </summary>
[TestClass]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class BackupConfigPointerTests
{
    private string _root = null!;
    private string _pointer = null!;
    private string _config = null!;

    [TestInitialize]
    public void Create()
    {
        _root = Directory.CreateTempSubdirectory("clippybot-pointer-").FullName;
        var folder = Directory.CreateDirectory(Path.Combine(_root, ".clippybot")).FullName;
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _config = Path.Combine(_root, "pgbackrest.conf");
        ClippyBot.Security.OwnerOnlyFile.Write(_config, "[global]\n");
        _pointer = Path.Combine(folder, BackupCli.ConfigPointer);
        File.WriteAllText(_pointer, _config + "\n");
        File.SetUnixFileMode(_pointer, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        Directory.CreateDirectory(Path.Combine(_root, "deep", "below"));
    }

    [TestCleanup]
    public void Remove() => Directory.Delete(_root, recursive: true);

    [TestMethod]
    public void The_pointer_of_the_operators_own_checkout_is_followed_from_any_folder_below_it() =>
        Assert.AreEqual(_config, BackupCli.FindConfigPointer(Path.Combine(_root, "deep", "below")));

    [TestMethod]
    public void A_pointer_others_can_write_is_refused()
    {
        File.SetUnixFileMode(_pointer, File.GetUnixFileMode(_pointer) | UnixFileMode.OtherWrite);
        Assert.ThrowsExactly<UsageException>(() => BackupCli.FindConfigPointer(_root));
    }

    [TestMethod]
    public void A_configuration_others_can_read_is_refused()
    {
        File.SetUnixFileMode(_config, File.GetUnixFileMode(_config) | UnixFileMode.GroupRead);
        var refused = Assert.ThrowsExactly<UsageException>(() => BackupCli.FindConfigPointer(_root));
        StringAssert.Contains(refused.Message, "--config FILE");
    }

    [TestMethod]
    public void A_pointer_that_belongs_to_another_user_is_refused()
    {
        // Give it away (as root), or, unprivileged, stand where another user's pointer is: /tmp is not ours either way.
        if (Environment.IsPrivilegedProcess)
        {
            using var chown = System.Diagnostics.Process.Start("chown", ["nobody", _pointer])!;
            chown.WaitForExit();
            Assert.AreEqual(0, chown.ExitCode);
            Assert.ThrowsExactly<UsageException>(() => BackupCli.FindConfigPointer(_root));
        }
        else
        {
            Assert.Inconclusive("Needs root to hand the pointer to another user.");
        }
    }

    [TestMethod]
    public void A_configuration_owned_by_the_postgres_user_as_the_AppHost_leaves_it_is_followed()
    {
        if (!Environment.IsPrivilegedProcess)
        {
            Assert.Inconclusive("Needs root to hand the configuration to postgres.");
        }
        using var chown = System.Diagnostics.Process.Start("chown", ["postgres", _config])!;
        chown.WaitForExit();
        Assert.AreEqual(0, chown.ExitCode);
        Assert.AreEqual(_config, BackupCli.FindConfigPointer(_root), "root, the operator, may follow it (failed before: always refused)");
    }

    [TestMethod]
    public void A_pointer_that_is_a_link_is_refused_without_being_read()
    {
        var elsewhere = Path.Combine(_root, "planted");
        File.WriteAllText(elsewhere, "/tmp/attacker.conf\n");
        File.Delete(_pointer);
        File.CreateSymbolicLink(_pointer, elsewhere);
        var refused = Assert.ThrowsExactly<UsageException>(() => BackupCli.FindConfigPointer(_root));
        StringAssert.Contains(refused.Message, "is a link");
    }
}
