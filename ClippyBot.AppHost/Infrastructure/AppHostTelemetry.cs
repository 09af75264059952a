using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// The AppHost's own metrics (<see cref="BackupMetrics"/>: it runs the backup schedule) go where the services' go: the
/// dashboard's OTLP endpoint with its API key, or <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> when an operator sets one (an
/// OpenTelemetry Collector in front of Prometheus/Alertmanager). Without either (tests, dashboard disabled) nothing is exported.
/// </summary>
public static class AppHostTelemetry
{
    public const string ServiceName = BackupScheduleExtensions.ResourceName;

    public static IDistributedApplicationBuilder AddAppHostTelemetry(this IDistributedApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var configuration = builder.Configuration;
        var explicitEndpoint = configuration["OTEL_EXPORTER_OTLP_ENDPOINT"];
        var endpoint = explicitEndpoint ?? configuration["ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL"] ?? configuration["DOTNET_DASHBOARD_OTLP_ENDPOINT_URL"];
        if (builder.ExecutionContext.IsPublishMode || string.IsNullOrWhiteSpace(endpoint)
            || (explicitEndpoint is null && configuration.GetValue<bool>("ASPIRE_DASHBOARD_DISABLED")))
        {
            return builder;
        }
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName, serviceInstanceId: Environment.MachineName))
            .WithMetrics(metrics => metrics
                .AddMeter(BackupMetrics.MeterName)
                .AddOtlpExporter((exporter, reader) =>
                {
                    exporter.Endpoint = new Uri(endpoint);
                    exporter.Protocol = OtlpExportProtocol.Grpc;
                    // The dashboard's OTLP endpoint takes its own API key (Aspire generates it per run); an operator's
                    // collector takes OTEL_EXPORTER_OTLP_HEADERS, which the exporter reads by itself.
                    if (explicitEndpoint is null && configuration["AppHost:OtlpApiKey"] is { Length: > 0 } apiKey)
                    {
                        exporter.Headers = $"x-otlp-api-key={apiKey}";
                    }
                    // A backup runs hours apart; a 15 s export keeps the dashboard's view and an alert's clock close.
                    reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = 15_000;
                }));
        return builder;
    }
}
