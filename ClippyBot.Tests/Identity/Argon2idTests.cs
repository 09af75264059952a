using System.Diagnostics;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Crypto;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace ClippyBot.Tests.Identity;

/// <summary>Interoperability with the reference implementation: Debian's <c>argon2</c> command-line tool.</summary>
[TestClass]
public sealed class Argon2idTests
{
    private static readonly Argon2idParameters Owasp = new();

    [ClassInitialize]
    public static Task RequireReferenceToolAsync(TestContext _) => Rig.OsPackages.RequireCommandAsync("argon2", "argon2");

    [TestMethod]
    [DataRow("correct horse battery staple", DisplayName = "ASCII")]
    [DataRow("pässwörd mit ümläuten ✓ 密码", DisplayName = "non-ASCII (UTF-8 bytes)")]
    public void Hash_made_by_the_reference_tool_verifies(string password)
    {
        const string salt = "somesalt16bytes!";
        var phc = ReferenceHash(password, salt, memoryKiB: 19_456, iterations: 2);

        Assert.IsTrue(Argon2id.Verify(phc, password, out var parameters), phc);
        Assert.AreEqual(Owasp, parameters);
        Assert.IsFalse(Argon2id.Verify(phc, password + "x", out _));
    }

    [TestMethod]
    [DataRow("correct horse battery staple", DisplayName = "ASCII")]
    [DataRow("pässwörd mit ümläuten ✓ 密码", DisplayName = "non-ASCII (UTF-8 bytes)")]
    public void Our_hash_is_reproduced_by_the_reference_tool(string password)
    {
        var ours = Argon2id.Hash(password, Owasp);
        Assert.IsTrue(Argon2id.TryParse(ours, out var parameters, out var salt, out _));

        // The tool takes the salt as raw bytes on the command line; ours are random, so re-hash with a printable salt.
        var printableSalt = "0123456789abcdef";
        var reference = ReferenceHash(password, printableSalt, parameters!.MemoryKiB, parameters.Iterations);
        Assert.AreEqual(16, salt.Length);
        var ourWithSameSalt = Argon2id.Format(parameters, System.Text.Encoding.ASCII.GetBytes(printableSalt),
            Argon2idHashWithSalt(password, System.Text.Encoding.ASCII.GetBytes(printableSalt)));
        Assert.AreEqual(reference, ourWithSameSalt);
        StringAssert.StartsWith(ours, "$argon2id$v=19$m=19456,t=2,p=1$");
    }

    [TestMethod]
    public void Identity_hasher_asks_for_a_rehash_when_parameters_were_weaker()
    {
        var hasher = new Argon2idPasswordHasher<object>(Options.Create(new PasswordHashingOptions()));
        var weak = Argon2id.Hash("passphrase of mine", new Argon2idParameters(8_192, 1));

        Assert.AreEqual(PasswordVerificationResult.SuccessRehashNeeded, hasher.VerifyHashedPassword(new object(), weak, "passphrase of mine"));
        Assert.AreEqual(PasswordVerificationResult.Success, hasher.VerifyHashedPassword(new object(), hasher.HashPassword(new object(), "p"), "p"));
        Assert.AreEqual(PasswordVerificationResult.Failed, hasher.VerifyHashedPassword(new object(), weak, "other"));
    }

    [TestMethod]
    [DataRow("", DisplayName = "empty")]
    [DataRow("$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHQxNmJ5dGVzIQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", DisplayName = "argon2i")]
    [DataRow("$argon2id$v=16$m=19456,t=2,p=1$c29tZXNhbHQxNmJ5dGVzIQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", DisplayName = "old version")]
    [DataRow("$argon2id$v=19$m=99999999,t=2,p=1$c29tZXNhbHQxNmJ5dGVzIQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", DisplayName = "absurd memory")]
    [DataRow("$argon2id$v=19$m=19456,t=2,p=4$c29tZXNhbHQxNmJ5dGVzIQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", DisplayName = "lanes")]
    [DataRow("$2b$12$abcdefghijklmnopqrstuu", DisplayName = "bcrypt")]
    public void Malformed_or_foreign_hashes_never_verify(string phc) =>
        Assert.IsFalse(Argon2id.Verify(phc, "anything", out _));

    private static byte[] Argon2idHashWithSalt(string password, byte[] salt)
    {
        var algorithm = NSec.Cryptography.PasswordBasedKeyDerivationAlgorithm.Argon2id(new NSec.Cryptography.Argon2Parameters
        {
            DegreeOfParallelism = 1,
            MemorySize = Owasp.MemoryKiB,
            NumberOfPasses = Owasp.Iterations,
        });
        return algorithm.DeriveBytes(System.Text.Encoding.UTF8.GetBytes(password), salt, Argon2id.HashBytes);
    }

    /// <summary><c>echo -n password | argon2 salt -id -t T -k M -p 1 -l 32 -e</c></summary>
    private static string ReferenceHash(string password, string salt, int memoryKiB, int iterations)
    {
        var startInfo = new ProcessStartInfo("argon2", [salt, "-id", "-t", iterations.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-k", memoryKiB.ToString(System.Globalization.CultureInfo.InvariantCulture), "-p", "1", "-l", "32", "-e"])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(startInfo)!;
        var utf8 = new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: false);
        using (var stdin = new StreamWriter(process.StandardInput.BaseStream, utf8))
        {
            stdin.Write(password);
        }
        var output = process.StandardOutput.ReadToEnd().Trim();
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.AreEqual(0, process.ExitCode, error);
        return output;
    }
}
