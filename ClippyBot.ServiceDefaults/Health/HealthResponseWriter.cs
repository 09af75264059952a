using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace ClippyBot.ServiceDefaults.Health;

/// <summary>
/// Writes per-check status as JSON. Only names, statuses and durations leave the process: descriptions and
/// exceptions of health checks routinely carry host names, connection strings or credentials.
/// </summary>
public static class HealthResponseWriter
{
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);

        var body = new HealthResponse(
            report.Status.ToString(),
            Math.Round(report.TotalDuration.TotalMilliseconds, 1),
            report.Entries
                .OrderBy(e => e.Key, StringComparer.Ordinal)
                .Select(e => new HealthCheckEntry(e.Key, e.Value.Status.ToString(), Math.Round(e.Value.Duration.TotalMilliseconds, 1)))
                .ToArray());

        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.Headers.CacheControl = "no-store";
        return JsonSerializer.SerializeAsync(context.Response.Body, body, HealthJsonContext.Default.HealthResponse, context.RequestAborted);
    }
}

public sealed record HealthResponse(string Status, double TotalDurationMs, IReadOnlyList<HealthCheckEntry> Checks);

public sealed record HealthCheckEntry(string Name, string Status, double DurationMs);

[System.Text.Json.Serialization.JsonSerializable(typeof(HealthResponse))]
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class HealthJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
