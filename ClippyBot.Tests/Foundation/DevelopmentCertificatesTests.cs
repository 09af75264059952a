using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using ClippyBot.AppHost.Infrastructure;
using ClippyBot.ServiceDefaults.Edge;
using Microsoft.Extensions.Time.Testing;

namespace ClippyBot.Tests.Foundation;

/// <summary>The AppHost's local CA and server certificate: created once, kept, renewed before expiry, private keys owner-only.</summary>
[TestClass]
public sealed class DevelopmentCertificatesTests
{
    private string _directory = null!;

    [TestInitialize]
    public void CreateDirectory() => _directory = Path.Combine(Path.GetTempPath(), "clippybot-tls-" + Guid.NewGuid().ToString("N"));

    [TestCleanup]
    public void DeleteDirectory()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [TestMethod]
    public void The_server_certificate_names_localhost_and_chains_to_the_development_CA()
    {
        var certificates = DevelopmentCertificates.Ensure(_directory, new FakeTimeProvider(DateTimeOffset.UtcNow));

        using var ca = certificates.LoadCaCertificate();
        using var server = X509Certificate2.CreateFromPemFile(certificates.ServerCertificatePath, certificates.ServerKeyPath);
        Assert.IsTrue(server.HasPrivateKey);
        Assert.IsTrue(server.MatchesHostname("localhost"));
        Assert.IsTrue(server.MatchesHostname("127.0.0.1"));
        Assert.IsFalse(server.MatchesHostname("example.com"));
        Assert.IsTrue(PrivateCertificateAuthority.IsTrusted(ca, server, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.IsFalse(PrivateCertificateAuthority.IsTrusted(ca, server, SslPolicyErrors.RemoteCertificateNameMismatch), "a name mismatch is never forgiven");
        Assert.IsTrue(server.NotAfter - DateTime.Now < TimeSpan.FromDays(91));

        if (!OperatingSystem.IsWindows())
        {
            foreach (var key in Directory.GetFiles(_directory, "*.key"))
            {
                Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key), key);
            }
        }
        using var stranger = DevelopmentCertificates.Ensure(_directory + "-other", new FakeTimeProvider(DateTimeOffset.UtcNow)).LoadCaCertificate();
        Directory.Delete(_directory + "-other", recursive: true);
        Assert.IsFalse(PrivateCertificateAuthority.IsTrusted(stranger, server, SslPolicyErrors.RemoteCertificateChainErrors), "another CA is not trusted");
    }

    [TestMethod]
    public void A_second_run_keeps_the_certificates_so_trust_set_up_once_lasts()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var first = DevelopmentCertificates.Ensure(_directory, clock);
        var before = Snapshot(first);

        clock.Advance(TimeSpan.FromDays(10));
        var second = DevelopmentCertificates.Ensure(_directory, clock);

        CollectionAssert.AreEqual(before, Snapshot(second));
    }

    [TestMethod]
    public void The_server_certificate_is_reissued_from_the_same_CA_when_30_days_remain()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var certificates = DevelopmentCertificates.Ensure(_directory, clock);
        var ca = File.ReadAllText(certificates.CaCertificatePath);
        var server = File.ReadAllText(certificates.ServerCertificatePath);

        clock.Advance(TimeSpan.FromDays(61));
        DevelopmentCertificates.Ensure(_directory, clock);

        Assert.AreEqual(ca, File.ReadAllText(certificates.CaCertificatePath), "the CA the developer trusts stays");
        Assert.AreNotEqual(server, File.ReadAllText(certificates.ServerCertificatePath));
        using var reissued = X509Certificate2.CreateFromPemFile(certificates.ServerCertificatePath, certificates.ServerKeyPath);
        Assert.IsTrue(reissued.NotAfter.ToUniversalTime() > clock.GetUtcNow().UtcDateTime.AddDays(80));
    }

    [TestMethod]
    public void A_damaged_key_file_is_replaced_instead_of_failing_the_start()
    {
        var certificates = DevelopmentCertificates.Ensure(_directory, TimeProvider.System);
        File.WriteAllText(certificates.ServerKeyPath, "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n");

        DevelopmentCertificates.Ensure(_directory, TimeProvider.System);

        using var server = X509Certificate2.CreateFromPemFile(certificates.ServerCertificatePath, certificates.ServerKeyPath);
        Assert.IsTrue(server.HasPrivateKey);
    }

    private static string[] Snapshot(DevelopmentCertificates certificates) =>
        [.. Directory.GetFiles(certificates.Directory).Order(StringComparer.Ordinal).Select(File.ReadAllText)];
}
