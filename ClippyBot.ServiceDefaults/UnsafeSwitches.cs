using Microsoft.Extensions.Configuration;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Settings that switch a protection off for local work, tests or the benchmark. Each is refused at start-up outside
/// the environments it is meant for (<c>Development</c>, <c>Testing</c> and <c>Bench</c> — the benchmark runs with
/// Production settings otherwise), with one message naming the switch, so none can leak into a deployment silently.
/// </summary>
public static class UnsafeSwitches
{
    /// <summary>The environment bench/run.sh runs the services in: production behaviour, with the bench's switches allowed.</summary>
    public const string BenchEnvironment = "Bench";

    /// <summary>Each switch and the value that makes it unsafe.</summary>
    public static readonly IReadOnlyList<(string Key, bool UnsafeValue, string Effect)> Switches =
    [
        ("Oidc:AllowHttp", true, "lets Identity issue and accept tokens over plain http"),
        ("Identity:AllowHttp", true, "lets a service fetch Identity's signing keys over plain http"),
        ("Edge:RequireHttps", false, "serves requests that did not come over TLS"),
        ("Bench:UnauthenticatedWorkspaceRead", true, "serves any workspace's name with no authentication"),
    ];

    public static bool AllowedIn(IHostEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        return environment.IsLocal() || environment.IsEnvironment(BenchEnvironment);
    }

    /// <exception cref="InvalidOperationException">A switch is set to its unsafe value outside Development, Testing and Bench.</exception>
    public static void Guard(IConfiguration configuration, IHostEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (AllowedIn(environment))
        {
            return;
        }
        foreach (var (key, unsafeValue, effect) in Switches)
        {
            if (configuration[key] is { } value && bool.TryParse(value, out var set) && set == unsafeValue)
            {
                throw new InvalidOperationException(
                    $"{key}={value} {effect}; it is refused in the {environment.EnvironmentName} environment (allowed only in Development, Testing and {BenchEnvironment}).");
            }
        }
    }
}
