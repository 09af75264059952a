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
        Assert.IsTrue(ClippyBot.Security.PrivateCaTrust.IsTrusted(ca, server, SslPolicyErrors.RemoteCertificateChainErrors));
        Assert.IsFalse(ClippyBot.Security.PrivateCaTrust.IsTrusted(ca, server, SslPolicyErrors.RemoteCertificateNameMismatch), "a name mismatch is never forgiven");
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
        Assert.IsFalse(ClippyBot.Security.PrivateCaTrust.IsTrusted(stranger, server, SslPolicyErrors.RemoteCertificateChainErrors), "another CA is not trusted");
    }

    [TestMethod]
    public void The_CA_can_vouch_only_for_loopback_names_even_with_its_own_key()
    {
        var certificates = DevelopmentCertificates.Ensure(_directory, new FakeTimeProvider(DateTimeOffset.UtcNow));
        using var ca = X509Certificate2.CreateFromPemFile(certificates.CaCertificatePath, Path.Combine(_directory, "ca.key"));
        Assert.IsTrue(ca.Extensions[DevelopmentCertificates.NameConstraintsOid]?.Critical, "critical name constraints on the CA");

        // Someone who took the CA's key issues a certificate for another name: no chain that trusts the CA accepts it.
        foreach (var (name, allowed) in new[] { ("localhost", true), ("api.localhost", true), ("bank.example", false), ("localhost.example", false) })
        {
            using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest($"CN={name}", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName(name);
            request.CertificateExtensions.Add(names.Build());
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
            request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
            using var issued = request.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1), [1, 2, 3, 4]);
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            Assert.AreEqual(allowed, chain.Build(issued), $"{name}: {string.Join(", ", chain.ChainStatus.Select(c => c.Status))}");
        }
        // An IP outside 127.0.0.0/8 is refused too.
        using var ipKey = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var ipRequest = new CertificateRequest("CN=public", ipKey, System.Security.Cryptography.HashAlgorithmName.SHA256);
        var ip = new SubjectAlternativeNameBuilder();
        ip.AddIpAddress(System.Net.IPAddress.Parse("203.0.113.5"));
        ipRequest.CertificateExtensions.Add(ip.Build());
        using var ipIssued = ipRequest.Create(ca, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1), [5, 6, 7, 8]);
        using var ipChain = new X509Chain();
        ipChain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        ipChain.ChainPolicy.CustomTrustStore.Add(ca);
        ipChain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.IsFalse(ipChain.Build(ipIssued));
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
