using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace ClippyBot.Security;

/// <summary>
/// Trust in one private certificate authority (the AppHost's development CA) besides the platform's roots. Used by the
/// services for outgoing HTTPS and by the AppHost to check the certificates it issues; public CAs stay trusted as before.
/// </summary>
public static class PrivateCaTrust
{
    public static X509Certificate2 Load(string pemPath) => X509Certificate2.CreateFromPem(File.ReadAllText(pemPath));

    /// <summary>True when the platform trusts the server, or when the only problem is the chain and it ends at <paramref name="ca"/>.</summary>
    public static bool IsTrusted(X509Certificate2 ca, X509Certificate? certificate, SslPolicyErrors errors)
    {
        ArgumentNullException.ThrowIfNull(ca);
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }
        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is null)
        {
            return false;
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        // A private development CA publishes no revocation lists.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.1"));
        using var server = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        return chain.Build(server);
    }

    /// <summary>Makes <paramref name="handler"/> trust <paramref name="ca"/> as well as the platform's roots.</summary>
    public static void Apply(HttpMessageHandler handler, X509Certificate2 ca)
    {
        // A client that already decides trust itself (pinning, client certificates…) keeps its own rule.
        switch (handler)
        {
            case SocketsHttpHandler sockets when sockets.SslOptions.RemoteCertificateValidationCallback is null:
                sockets.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => IsTrusted(ca, certificate, errors);
                break;
            case HttpClientHandler client when client.ServerCertificateCustomValidationCallback is null:
                client.ServerCertificateCustomValidationCallback = (_, certificate, _, errors) => IsTrusted(ca, certificate, errors);
                break;
        }
    }
}
