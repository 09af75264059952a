using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.ServiceDefaults.Edge;

/// <summary>
/// Trust in one extra certificate authority for outgoing HTTPS — the AppHost's local development CA, which signs the
/// certificate every service presents when the system runs on a developer's machine. Public CAs stay trusted as before:
/// the extra root is consulted only when the platform's own chain validation fails, and a host-name mismatch is never forgiven.
/// </summary>
public static class PrivateCertificateAuthority
{
    /// <summary>Path of a PEM file holding the CA certificate (set by the AppHost; absent in deployments).</summary>
    public const string TrustedCaFileKey = "Tls:TrustedCaFile";

    /// <summary>Every HttpClient made by the factory (service discovery, JWKS backchannel, resilience) trusts <paramref name="ca"/>.</summary>
    public static IServiceCollection TrustForOutgoingHttps(this IServiceCollection services, X509Certificate2 ca)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(ca);
        services.ConfigureHttpClientDefaults(http => http.ConfigurePrimaryHttpMessageHandler((handler, _) => Trust(handler, ca)));
        return services;
    }

    public static X509Certificate2 Load(string pemPath) => X509Certificate2.CreateFromPem(File.ReadAllText(pemPath));

    private static void Trust(HttpMessageHandler handler, X509Certificate2 ca)
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
}
