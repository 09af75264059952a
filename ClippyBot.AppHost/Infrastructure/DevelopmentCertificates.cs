using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// The HTTPS certificates of a local run. The AppHost keeps its own small certificate authority in <c>.clippybot/tls/</c>
/// (ECDSA P-256, 2 years) and issues one <c>localhost</c>/<c>127.0.0.1</c>/<c>::1</c> server certificate from it (90 days,
/// re-issued when under 30 days remain). Every service presents that certificate and trusts that CA for its calls to the
/// others; a developer trusts <c>ca.pem</c> once in the browser or system store to get rid of warnings. Nothing here depends
/// on the ASP.NET developer certificate, which does not exist on a fresh machine (and cannot be trusted on Linux without root).
/// The CA carries critical X.509 name constraints (permitted: <c>localhost</c>, <c>127.0.0.0/8</c>, <c>::1</c>): trusting it
/// system-wide cannot make it vouch for any other name, even if its key leaks.
/// </summary>
public sealed class DevelopmentCertificates
{
    private static readonly TimeSpan CaLifetime = TimeSpan.FromDays(730);
    private static readonly TimeSpan ServerLifetime = TimeSpan.FromDays(90);
    private static readonly TimeSpan RenewBefore = TimeSpan.FromDays(30);

    private DevelopmentCertificates(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    public string CaCertificatePath => Path.Combine(Directory, "ca.pem");

    private string CaKeyPath => Path.Combine(Directory, "ca.key");

    public string ServerCertificatePath => Path.Combine(Directory, "localhost.pem");

    public string ServerKeyPath => Path.Combine(Directory, "localhost.key");

    /// <summary>Loads the CA and server certificate from <paramref name="directory"/>, creating or renewing what is missing or expiring.</summary>
    public static DevelopmentCertificates Ensure(string directory, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        System.IO.Directory.CreateDirectory(directory);
        OwnerOnly.Directory(directory);
        var certificates = new DevelopmentCertificates(directory);
        var now = time.GetUtcNow();
        using var ca = certificates.LoadValidCa(now) ?? certificates.CreateCa(now);
        if (!certificates.ServerCertificateIsValid(ca, now))
        {
            certificates.IssueServerCertificate(ca, now);
        }
        return certificates;
    }

    public X509Certificate2 LoadCaCertificate() => X509Certificate2.CreateFromPem(File.ReadAllText(CaCertificatePath));

    private X509Certificate2? LoadValidCa(DateTimeOffset now)
    {
        if (!File.Exists(CaCertificatePath) || !File.Exists(CaKeyPath))
        {
            return null;
        }
        try
        {
            var ca = X509Certificate2.CreateFromPemFile(CaCertificatePath, CaKeyPath);
            // A CA from before the name constraints is replaced (and must be trusted again): it could vouch for any name.
            if (ca.NotAfter.ToUniversalTime() - now.UtcDateTime > RenewBefore && ca.Extensions[NameConstraintsOid] is { Critical: true })
            {
                return ca;
            }
            ca.Dispose();
        }
        catch (CryptographicException)
        {
            // Unreadable or mismatched files: start over with a new CA (the old one must then be trusted again).
        }
        return null;
    }

    private X509Certificate2 CreateCa(DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN=ClippyBot Local Development CA ({Environment.MachineName})", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(LoopbackOnly());
        var ca = request.CreateSelfSigned(now.AddMinutes(-5), now.Add(CaLifetime));
        WritePem(CaKeyPath, key.ExportPkcs8PrivateKeyPem(), secret: true);
        WritePem(CaCertificatePath, ca.ExportCertificatePem(), secret: false);
        // A new CA invalidates any server certificate issued by the previous one.
        File.Delete(ServerCertificatePath);
        return ca;
    }

    private bool ServerCertificateIsValid(X509Certificate2 ca, DateTimeOffset now)
    {
        if (!File.Exists(ServerCertificatePath) || !File.Exists(ServerKeyPath))
        {
            return false;
        }
        try
        {
            using var server = X509Certificate2.CreateFromPemFile(ServerCertificatePath, ServerKeyPath);
            return server.NotAfter.ToUniversalTime() - now.UtcDateTime > RenewBefore
                   && ClippyBot.Security.PrivateCaTrust.IsTrusted(ca, server, System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    private void IssueServerCertificate(X509Certificate2 ca, DateTimeOffset now)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(System.Net.IPAddress.Loopback);
        names.AddIpAddress(System.Net.IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(names.Build(critical: false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        var notAfter = now.Add(ServerLifetime) < ca.NotAfter.ToUniversalTime() ? now.Add(ServerLifetime) : new DateTimeOffset(ca.NotAfter.ToUniversalTime());
        using var server = request.Create(ca, now.AddMinutes(-5), notAfter, serial);
        WritePem(ServerKeyPath, key.ExportPkcs8PrivateKeyPem(), secret: true);
        WritePem(ServerCertificatePath, server.ExportCertificatePem() + "\n" + ca.ExportCertificatePem(), secret: false);
    }

    public const string NameConstraintsOid = "2.5.29.30";

    /// <summary>
    /// RFC 5280 name constraints, critical: only <c>localhost</c> (and names under it), <c>127.0.0.0/8</c> and <c>::1</c>
    /// are permitted in any certificate below this CA. .NET has no builder for this extension, so it is encoded here
    /// (NameConstraints ::= SEQUENCE { permittedSubtrees [0] GeneralSubtrees }).
    /// </summary>
    private static X509Extension LoopbackOnly()
    {
        var writer = new System.Formats.Asn1.AsnWriter(System.Formats.Asn1.AsnEncodingRules.DER);
        using (writer.PushSequence())
        using (writer.PushSequence(new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 0)))
        {
            using (writer.PushSequence())
            {
                writer.WriteCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, "localhost", new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 2));
            }
            foreach (var (address, mask) in new (byte[], byte[])[]
            {
                ([127, 0, 0, 0], [255, 0, 0, 0]),
                (System.Net.IPAddress.IPv6Loopback.GetAddressBytes(), Enumerable.Repeat((byte)0xFF, 16).ToArray()),
            })
            {
                using (writer.PushSequence())
                {
                    writer.WriteOctetString([.. address, .. mask], new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 7));
                }
            }
        }
        return new X509Extension(NameConstraintsOid, writer.Encode(), critical: true);
    }

    /// <summary>Written to a temp file (owner-only from its creation when secret) and moved into place, so a crash never
    /// leaves half a key and no one else can ever open it.</summary>
    private static void WritePem(string path, string pem, bool secret)
    {
        var temporary = path + ".tmp";
        File.Delete(temporary);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (secret && !OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var writer = new StreamWriter(new FileStream(temporary, options)))
        {
            writer.Write(pem + "\n");
        }
        File.Move(temporary, path, overwrite: true);
    }
}
