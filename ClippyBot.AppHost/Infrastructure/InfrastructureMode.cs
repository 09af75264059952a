using System.Diagnostics;

namespace ClippyBot.AppHost.Infrastructure;

public enum InfrastructureMode
{
    /// <summary>PostgreSQL and Redis as containers (Aspire's own integrations).</summary>
    Containers,

    /// <summary>PostgreSQL from the machine's binaries and a Redis-protocol server as local processes.</summary>
    Local,
}

/// <summary>Bad AppHost configuration: the message names the fix.</summary>
public sealed class InfrastructureConfigurationException(string message) : Exception(message);

public static class InfrastructureModeResolver
{
    public const string ConfigurationKey = "Infrastructure";

    /// <summary>
    /// <c>auto</c> (default) picks containers when a container runtime answers, and always in publish mode, so a
    /// deployment manifest describes containers; otherwise local processes.
    /// </summary>
    public static InfrastructureMode Resolve(IDistributedApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var configured = builder.Configuration[ConfigurationKey]?.Trim();
        var requested = string.IsNullOrEmpty(configured) ? "auto" : configured.ToLowerInvariant();

        if (builder.ExecutionContext.IsPublishMode)
        {
            return InfrastructureMode.Containers;
        }

        return requested switch
        {
            "containers" => InfrastructureMode.Containers,
            "local" => InfrastructureMode.Local,
            "auto" => ContainerRuntimeAnswers(builder.Configuration["ASPIRE_CONTAINER_RUNTIME"] ?? "docker")
                ? InfrastructureMode.Containers
                : InfrastructureMode.Local,
            _ => throw new InfrastructureConfigurationException(
                $"Unknown infrastructure mode '{configured}'. Use --{ConfigurationKey}=auto, --{ConfigurationKey}=containers or --{ConfigurationKey}=local."),
        };
    }

    /// <summary>
    /// A runtime whose CLI exists but whose engine is down makes Aspire's container resources wait forever, so
    /// "answers" means the engine itself replied within a few seconds.
    /// </summary>
    private static bool ContainerRuntimeAnswers(string runtime)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo(runtime, ["info", "--format", "{{.ServerVersion}}"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            });
            if (process is null)
            {
                return false;
            }
            _ = process.StandardOutput.ReadToEndAsync();
            _ = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(5)))
            {
                process.Kill(entireProcessTree: true);
                return false;
            }
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // the runtime's CLI is not installed
        }
    }
}
