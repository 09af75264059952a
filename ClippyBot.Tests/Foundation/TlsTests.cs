using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Foundation;

/// <summary>Real Kestrel on a real socket with a generated certificate: TLS 1.3 is accepted, TLS 1.2 refused.</summary>
[TestClass]
public sealed class TlsTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public async Task Identity_accepts_TLS_13_and_refuses_TLS_12()
    {
        using var certificate = CertificateFile.Create();
        await using var identity = await ServiceFactory.WithFreshDatabaseAsync<IdentityDataContext>("identitydb", HttpsSettings(certificate, new()
        {
            ["Oidc:KeyEncryptionKey"] = RandomNumberGenerator.GetHexString(64),
            ["Oidc:ClientSecretHashKey"] = RandomNumberGenerator.GetHexString(64),
        }), ct: TestContext.CancellationToken);
        await AssertTls13OnlyAsync(identity, certificate.Thumbprint, TestContext.CancellationToken);
    }

    [TestMethod]
    public async Task Api_accepts_TLS_13_and_refuses_TLS_12()
    {
        using var certificate = CertificateFile.Create();
        await using var api = await ServiceFactory.WithFreshDatabaseAsync<ApiDbContext>("apidb", HttpsSettings(certificate, new()
        {
            ["ApiKeys:HashKey"] = RandomNumberGenerator.GetHexString(64),
            ["Audit:ChainKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
            ["Encryption:KeyEncryptionKey"] = RandomNumberGenerator.GetHexString(64),
        }), ct: TestContext.CancellationToken);
        await AssertTls13OnlyAsync(api, certificate.Thumbprint, TestContext.CancellationToken);
    }

    private static Dictionary<string, string?> HttpsSettings(CertificateFile certificate, Dictionary<string, string?> extra)
    {
        extra["Kestrel:Endpoints:Https:Url"] = "https://127.0.0.1:0";
        extra["Kestrel:Endpoints:Https:Certificate:Path"] = certificate.Path;
        extra["Kestrel:Endpoints:Https:Certificate:Password"] = certificate.Password;
        return extra;
    }

    private static async Task AssertTls13OnlyAsync<T>(WebApplicationFactory<T> factory, string thumbprint, CancellationToken ct) where T : class
    {
        factory.UseKestrel();
        factory.StartServer();
        var address = new Uri(factory.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single(a => a.StartsWith("https", StringComparison.Ordinal)));

        Assert.AreEqual(SslProtocols.Tls13, await HandshakeAsync(address, SslProtocols.Tls13, thumbprint, ct));
        await Assert.ThrowsAsync<Exception>(() => HandshakeAsync(address, SslProtocols.Tls12, thumbprint, ct), "TLS 1.2 must not be negotiated");
    }

    private static async Task<SslProtocols> HandshakeAsync(Uri address, SslProtocols protocol, string thumbprint, CancellationToken ct)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port, ct);
        // Pinned to the certificate this test generated (it is self-signed, so no chain to check).
        await using var ssl = new SslStream(tcp.GetStream(), leaveInnerStreamOpen: false,
            (_, certificate, _, _) => certificate is not null && string.Equals(certificate.GetCertHashString(), thumbprint, StringComparison.OrdinalIgnoreCase));
#pragma warning disable SYSLIB0039 // TLS 1.2 on purpose: the test proves it is refused.
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "localhost", EnabledSslProtocols = protocol }, ct);
#pragma warning restore SYSLIB0039
        return ssl.SslProtocol;
    }

    /// <summary>A throwaway self-signed localhost certificate as a password-protected PFX file.</summary>
    private sealed class CertificateFile : IDisposable
    {
        private CertificateFile(string path, string password, string thumbprint)
        {
            Path = path;
            Password = password;
            Thumbprint = thumbprint;
        }

        public string Thumbprint { get; }

        public string Path { get; }

        public string Password { get; }

        public static CertificateFile Create()
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("localhost");
            san.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(san.Build());
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
            var password = RandomNumberGenerator.GetHexString(32);
            var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"clippybot-tls-{Guid.NewGuid():N}.pfx");
            File.WriteAllBytes(path, certificate.Export(X509ContentType.Pfx, password));
            return new CertificateFile(path, password, certificate.Thumbprint);
        }

        public void Dispose() => File.Delete(Path);
    }
}
