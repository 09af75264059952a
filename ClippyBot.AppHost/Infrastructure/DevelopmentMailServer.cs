using System.Globalization;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// smtp4dev (from the repository's tool manifest, restored by the AppHost build) as the development mail server: it
/// accepts every message Identity sends and shows it in a web inbox linked from the dashboard. Messages are kept in
/// memory only. Run mode only; a deployment configures its real SMTP relay in the <c>Email</c> section.
/// </summary>
public static class DevelopmentMailServer
{
    public const string Name = "mail";

    public static IResourceBuilder<ExecutableResource>? AddDevelopmentMailServer(this IDistributedApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (builder.ExecutionContext.IsPublishMode)
        {
            return null;
        }
        var repositoryRoot = Path.GetFullPath(Path.Combine(builder.AppHostDirectory, ".."));
        var webPort = LocalInfrastructureOptions.FreePort();
        var smtpPort = LocalInfrastructureOptions.FreePort(exclude: webPort);
        return builder.AddExecutable(Name, "dotnet", repositoryRoot,
                "tool", "run", "smtp4dev", "--",
                $"--urls=http://127.0.0.1:{webPort.ToString(CultureInfo.InvariantCulture)}",
                $"--smtpport={smtpPort.ToString(CultureInfo.InvariantCulture)}",
                "--bindaddress=127.0.0.1", "--imapport=0", "--pop3port=0", "--db=", "--nousersettings")
            .WithHttpEndpoint(port: webPort, targetPort: webPort, name: "http", isProxied: false)
            .WithEndpoint(name: "smtp", port: smtpPort, targetPort: smtpPort, scheme: "tcp", isProxied: false)
            .WithUrlForEndpoint("http", url => url.DisplayText = "Inbox")
            .WithHttpHealthCheck("/api/messages");
    }

    /// <summary>The service sends its mail to the development mail server (plain SMTP on loopback).</summary>
    public static IResourceBuilder<ProjectResource> WithDevelopmentMail(
        this IResourceBuilder<ProjectResource> service, IResourceBuilder<ExecutableResource>? mail)
    {
        if (mail is null)
        {
            return service;
        }
        var smtp = mail.GetEndpoint("smtp");
        return service.WithEnvironment("Email__Host", "127.0.0.1")
            .WithEnvironment("Email__Port", smtp.Property(EndpointProperty.Port))
            .WithEnvironment("Email__Security", "None")
            .WaitFor(mail);
    }
}
