namespace ClippyBot.AppHost.Infrastructure;

public static class ServiceResourceExtensions
{
    /// <summary>The service's readiness endpoint drives its health in the dashboard and for <c>WaitFor</c>.</summary>
    public static IResourceBuilder<ProjectResource> WithOwnDatabase(
        this IResourceBuilder<ProjectResource> service, IResourceBuilder<IResourceWithConnectionString> database) =>
        service.WithOwnSecondDatabase(database).WithHttpHealthCheck("/health");

    /// <summary>Another database the service owns (its readiness check is already there from the first).</summary>
    public static IResourceBuilder<ProjectResource> WithOwnSecondDatabase(
        this IResourceBuilder<ProjectResource> service, IResourceBuilder<IResourceWithConnectionString> database) =>
        service.WithReference(database).WaitFor(database);

    public static IResourceBuilder<ProjectResource> WithCache(
        this IResourceBuilder<ProjectResource> service, IResourceBuilder<IResourceWithConnectionString> cache) =>
        service.WithReference(cache).WaitFor(cache);

    /// <summary>
    /// The service listens on HTTPS only (its launch profile), presenting the AppHost's development server certificate, and
    /// trusts the development CA for calls to the other services. Aspire's own developer-certificate wiring is switched off
    /// so there is exactly one source of the certificate.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithDevelopmentTls(
        this IResourceBuilder<ProjectResource> service, DevelopmentCertificates? certificates)
    {
        if (certificates is null)
        {
            return service;
        }
#pragma warning disable ASPIRECERTIFICATES001 // Evaluation API; the alternative is two certificate sources fighting over Kestrel's settings.
        return service.WithoutHttpsCertificate()
#pragma warning restore ASPIRECERTIFICATES001
            // No orchestrator proxy in front: behind it every client is 127.0.0.1, and per-address limits act as one global limit.
            .WithEndpoint("https", endpoint => endpoint.IsProxied = false)
            .WithEnvironment("Kestrel__Certificates__Default__Path", certificates.ServerCertificatePath)
            .WithEnvironment("Kestrel__Certificates__Default__KeyPath", certificates.ServerKeyPath)
            .WithEnvironment("Tls__TrustedCaFile", certificates.CaCertificatePath);
    }
}
