using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using StackExchange.Redis;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>A Redis-protocol server (redis-server, or Garnet) run as a local process; same name and connection-string shape as Aspire's Redis container.</summary>
public sealed class LocalRedisResource(string name, string command, string workingDirectory, ParameterResource password,
    IReadOnlyDictionary<string, ParameterResource> userPasswords)
    : ExecutableResource(name, command, workingDirectory), IResourceWithConnectionString
{
    internal const string EndpointName = "tcp";

    public ParameterResource PasswordParameter { get; } = password;

    /// <summary>Per-service ACL users' passwords (redis-server and Garnet; see <see cref="RedisUsers"/>).</summary>
    public IReadOnlyDictionary<string, ParameterResource> UserPasswords { get; } = userPasswords;

    public EndpointReference PrimaryEndpoint => field ??= new(this, EndpointName);

    /// <summary>The administrator's (the AppHost's health check); services get <see cref="ConnectionStringFor"/>.</summary>
    public ReferenceExpression ConnectionStringExpression =>
        ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.IPV4Host)}:{PrimaryEndpoint.Property(EndpointProperty.Port)},user={RedisUsers.Admin},password={PasswordParameter}");

    /// <summary>The connection string of <paramref name="service"/>'s own ACL user; a service without one gets none (never the administrator's).</summary>
    public ReferenceExpression ConnectionStringFor(string service) => UserPasswords.GetValueOrDefault(service) is { } user
        ? ReferenceExpression.Create($"{PrimaryEndpoint.Property(EndpointProperty.IPV4Host)}:{PrimaryEndpoint.Property(EndpointProperty.Port)},user={service},password={user}")
        : throw new InvalidOperationException($"The cache has no user for '{service}' (RedisUsers.Rules).");
}

public static class LocalRedisBuilderExtensions
{
    /// <summary>
    /// redis-server when it is on PATH (or asked for), otherwise Microsoft Garnet from the repository's tool manifest
    /// (restored by the AppHost build), so nothing has to be installed by hand. The password lives in a 0600 config file,
    /// never on the command line, which the dashboard displays.
    /// </summary>
    public static IResourceBuilder<LocalRedisResource> AddLocalRedis(
        this IDistributedApplicationBuilder builder, string name, LocalInfrastructureOptions options, string dataRoot, string repositoryRoot)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(options);

        var folder = Path.Combine(dataRoot, name);
        Directory.CreateDirectory(folder);
        OwnerOnly.Directory(folder);
        var secret = RandomNumberGenerator.GetHexString(48, lowercase: true);
        var password = builder.AddParameter($"{name}-password", secret, secret: true);

        var useRedis = options.RedisServer.ToLowerInvariant() switch
        {
            "redis" => true,
            "garnet" => false,
            "auto" => FindOnPath("redis-server") is not null,
            _ => throw new InfrastructureConfigurationException(
                $"Unknown {LocalInfrastructureOptions.SectionName}:{nameof(LocalInfrastructureOptions.RedisServer)} '{options.RedisServer}'. Use auto, redis or garnet."),
        };

        // One ACL user per service (RedisUsers) in both servers; the default user is off.
        var secrets = RedisUsers.Rules.Keys.ToDictionary(u => u, _ => RandomNumberGenerator.GetHexString(48, lowercase: true));
        secrets[RedisUsers.Admin] = secret;
        var userPasswords = RedisUsers.Rules.Keys.ToDictionary(u => u, u => builder.AddParameter($"{name}-{u}-password", secrets[u], secret: true).Resource);

        LocalRedisResource resource;
        string[] leadingArgs;
        if (useRedis)
        {
            var redis = FindOnPath("redis-server") ?? throw new InfrastructureConfigurationException(
                "redis-server is not on PATH. Install it (`apt-get install -y redis-server`) or set LocalInfrastructure:RedisServer=garnet.");
            var configFile = WriteSecretFile(Path.Combine(folder, "redis.conf"),
                $"bind 127.0.0.1\nprotected-mode yes\nsave \"\"\nappendonly no\n" + RedisUsers.Acl(secrets));
            resource = new LocalRedisResource(name, redis, folder, password.Resource, userPasswords);
            leadingArgs = [configFile];
        }
        else
        {
            var aclFile = WriteSecretFile(Path.Combine(folder, "users.acl"), RedisUsers.GarnetAcl(secrets));
            var configFile = WriteSecretFile(Path.Combine(folder, "garnet.conf"), System.Text.Json.JsonSerializer.Serialize(
                new Dictionary<string, string> { ["AuthenticationMode"] = "Acl", ["AclFile"] = aclFile }));
            resource = new LocalRedisResource(name, "dotnet", repositoryRoot, password.Resource, userPasswords);
            leadingArgs = ["tool", "run", "garnet-server", "--", "--config-import-path", configFile, "--lua", "true", "-q",
                "--memory", "256m", "--index", "32m"];
        }

        var healthKey = $"{name}_check";
        builder.Services.AddHealthChecks().Add(new HealthCheckRegistration(
            healthKey, _ => new RedisHealthCheck(resource), failureStatus: null, tags: null));

        var port = options.RedisPort;
        return builder.AddResource(resource)
            .WithEndpoint(name: LocalRedisResource.EndpointName, scheme: "tcp", port: port, targetPort: port, isProxied: false)
            .WithArgs(context =>
            {
                foreach (var arg in leadingArgs)
                {
                    context.Args.Add(arg);
                }
                context.Args.Add("--bind");
                context.Args.Add("127.0.0.1");
                context.Args.Add("--port");
                context.Args.Add(resource.PrimaryEndpoint.Property(EndpointProperty.TargetPort));
            })
            // Garnet is a .NET server: like the services (Directory.Build.props), its idle thread-pool workers sleep
            // rather than spin, which on a small machine took a core's time from the services it serves.
            .WithEnvironment(context =>
            {
                if (!useRedis)
                {
                    context.EnvironmentVariables["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0";
                }
            })
            .WithHealthCheck(healthKey);
    }

    private static string WriteSecretFile(string path, string content)
    {
        File.Delete(path);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }
        using (var writer = new StreamWriter(new FileStream(path, options)))
        {
            writer.Write(content);
        }
        return path;
    }

    private static string? FindOnPath(string command) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, command))
            .FirstOrDefault(File.Exists);

    private sealed class RedisHealthCheck(LocalRedisResource resource) : IHealthCheck
    {
        public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
        {
            try
            {
                var connectionString = await resource.ConnectionStringExpression.GetValueAsync(cancellationToken);
                var config = ConfigurationOptions.Parse(connectionString!);
                config.AbortOnConnectFail = true;
                config.ConnectTimeout = 3000;
                await using var connection = await ConnectionMultiplexer.ConnectAsync(config);
                await connection.GetDatabase().PingAsync();
                return HealthCheckResult.Healthy();
            }
#pragma warning disable CA1031 // any failure means "not ready"
            catch (Exception ex)
#pragma warning restore CA1031
            {
                return HealthCheckResult.Unhealthy(ex.GetType().Name);
            }
        }
    }
}
