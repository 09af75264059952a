namespace ClippyBot.AppHost.Infrastructure;

public static class ServiceResourceExtensions
{
    /// <summary>The service's readiness endpoint drives its health in the dashboard and for <c>WaitFor</c>.</summary>
    public static IResourceBuilder<ProjectResource> WithOwnDatabase(
        this IResourceBuilder<ProjectResource> service, IResourceBuilder<IResourceWithConnectionString> database) =>
        service.WithReference(database).WaitFor(database).WithHttpHealthCheck("/health");

    public static IResourceBuilder<ProjectResource> WithCache(
        this IResourceBuilder<ProjectResource> service, IResourceBuilder<IResourceWithConnectionString> cache) =>
        service.WithReference(cache).WaitFor(cache);
}
