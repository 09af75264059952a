using System.Security.Cryptography.X509Certificates;
using ClippyBot.Security;
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
        services.ConfigureHttpClientDefaults(http => http.ConfigurePrimaryHttpMessageHandler((handler, _) => PrivateCaTrust.Apply(handler, ca)));
        return services;
    }
}
