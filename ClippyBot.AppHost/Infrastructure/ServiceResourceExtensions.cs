namespace ClippyBot.AppHost.Infrastructure;

public static class ServiceResourceExtensions
{
    /// <summary>The service's readiness endpoint drives its health in the dashboard and for <c>WaitFor</c>.</summary>
    public static IResourceBuilder<ProjectResource> WithOwnDatabase<TProject>(this IResourceBuilder<ProjectResource> service, ServiceDatabase database)
        where TProject : IProjectMetadata, new() =>
        service.WithOwnSecondDatabase<TProject>(database).WithHttpHealthCheck("/health");

    /// <summary>
    /// Another database the service owns (its readiness check is already there from the first). Where the database has an
    /// owner role, a migrator — the same project (<typeparamref name="TProject"/>, so it runs the AppHost's build rather
    /// than building again) run with <c>Database:Migrations=Only</c> and the owner's connection string — applies the
    /// migrations and exits first; the service itself connects as the runtime role (no DDL) and only waits for the schema.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithOwnSecondDatabase<TProject>(this IResourceBuilder<ProjectResource> service, ServiceDatabase database)
        where TProject : IProjectMetadata, new()
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(database);
        service.WithReference(database.Resource).WaitFor(database.Resource);
        if (database.OwnerConnectionString is not { } owner)
        {
            return service;
        }
        var migrator = Migrator<TProject>(service)
            .WithEnvironment($"ConnectionStrings__{database.Name}", owner)
            .WaitFor(database.Resource);
        return service.WithEnvironment("Database__Migrations", nameof(ClippyBot.Contracts.MigrationMode.Await)).WaitForCompletion(migrator);
    }

    private static IResourceBuilder<ProjectResource> Migrator<TProject>(IResourceBuilder<ProjectResource> service) where TProject : IProjectMetadata, new()
    {
        var name = service.Resource.Name + "-migrations";
        if (service.ApplicationBuilder.Resources.OfType<ProjectResource>().FirstOrDefault(r => r.Name == name) is { } existing)
        {
            return service.ApplicationBuilder.CreateResourceBuilder(existing);
        }
        return service.ApplicationBuilder.AddProject<TProject>(name, o => o.ExcludeLaunchProfile = true)
            .WithEnvironment("Database__Migrations", nameof(ClippyBot.Contracts.MigrationMode.Only))
            .WithEnvironment("ASPNETCORE_ENVIRONMENT", service.ApplicationBuilder.Environment.EnvironmentName);
    }

    /// <summary>A page of the service linked from its dashboard row (<paramref name="path"/> on its https endpoint).</summary>
    public static IResourceBuilder<ProjectResource> WithPageLink(this IResourceBuilder<ProjectResource> service, string path, string text) =>
        service.WithUrls(context =>
        {
            if (context.Urls.FirstOrDefault(u => u.Endpoint?.EndpointName == "https") is { } https)
            {
                context.Urls.Add(new ResourceUrlAnnotation { Url = https.Url.TrimEnd('/') + path, DisplayText = text });
            }
        });

    /// <summary>The cache as the service's own ACL user where there are users (local redis-server), else the shared login.</summary>
    public static IResourceBuilder<ProjectResource> WithCache(this IResourceBuilder<ProjectResource> service, ServiceCache cache)
    {
        ArgumentNullException.ThrowIfNull(service);
        ArgumentNullException.ThrowIfNull(cache);
        service.WaitFor(cache.Resource);
        return cache.ConnectionStringFor is { } own
            ? service.WithEnvironment($"ConnectionStrings__{cache.Resource.Resource.Name}", own(service.Resource.Name))
            : service.WithReference(cache.Resource);
    }

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
