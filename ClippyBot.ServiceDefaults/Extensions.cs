using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using ClippyBot.ServiceDefaults.Data;
using ClippyBot.ServiceDefaults.Edge;
using ClippyBot.ServiceDefaults.Health;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Microsoft.Extensions.Hosting;

/// <summary>
/// Cross-cutting defaults every ClippyBot service starts with: telemetry, health, service discovery,
/// resilient HttpClients and RFC 7807 problem details.
/// </summary>
public static class ServiceDefaultsExtensions
{
    public const string HealthPath = "/health";
    public const string AlivePath = "/alive";

    /// <summary>Tag for checks that say only "the process runs" (liveness); everything else is readiness.</summary>
    public const string LiveTag = "live";

    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        UnsafeSwitches.Guard(builder.Configuration, builder.Environment);
        builder.ConfigureOpenTelemetry();
        builder.AddDefaultHealthChecks();

        builder.Services.AddServiceDiscovery();
        builder.Services.ConfigureHttpClientDefaults(http =>
        {
            http.AddStandardResilienceHandler();
            http.AddServiceDiscovery();
        });

        // A request that cannot be read or bound is thrown (in every environment) so the exception handler can answer 400
        // problem details naming the field: the JSON path where the body went wrong, or the parameter that would not bind.
        builder.Services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        builder.Services.AddProblemDetails(o => o.CustomizeProblemDetails = BadRequestProblem.Describe);
        builder.Services.AddSingleton<ClippyBot.ServiceDefaults.SecurityMetrics>();
        builder.Services.AddSingleton<ClippyBot.ServiceDefaults.Detection.SecuritySignals>();
        if (builder.Configuration[PrivateCertificateAuthority.TrustedCaFileKey] is { Length: > 0 } caFile)
        {
            builder.Services.TrustForOutgoingHttps(ClippyBot.Security.PrivateCaTrust.Load(caFile));
        }
        builder.AddEdgeHardening();
        // The server header only helps fingerprinting.
        builder.Services.Configure<KestrelServerOptions>(o => o.AddServerHeader = false);
        return builder;
    }

    public static TBuilder ConfigureOpenTelemetry<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Logging.AddOpenTelemetry(logging =>
        {
            logging.IncludeFormattedMessage = true;
            logging.IncludeScopes = true;
        });

        builder.Services.AddOpenTelemetry()
            .WithMetrics(metrics => metrics
                .AddMeter(ClippyBot.ServiceDefaults.SecurityMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation())
            .WithTracing(tracing => tracing
                .AddSource(builder.Environment.ApplicationName)
                .AddSource(MigrationTelemetry.SourceName)
                .AddAspNetCoreInstrumentation(o =>
                    // Probes hit these every few seconds; tracing them buries real traffic.
                    o.Filter = ctx => !ctx.Request.Path.StartsWithSegments(HealthPath)
                                      && !ctx.Request.Path.StartsWithSegments(AlivePath))
                .AddHttpClientInstrumentation());

        if (!string.IsNullOrWhiteSpace(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            builder.Services.AddOpenTelemetry().UseOtlpExporter();
        }

        return builder;
    }

    public static TBuilder AddDefaultHealthChecks<TBuilder>(this TBuilder builder) where TBuilder : IHostApplicationBuilder
    {
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy(), [LiveTag]);
        return builder;
    }

    /// <summary>
    /// The first middleware of every service: edge hardening (forwarded headers from trusted proxies only, HTTPS, security
    /// headers), then unhandled errors and bare status codes as problem details. Each service's <c>UseXxxPipeline</c> starts with it.
    /// </summary>
    public static WebApplication UseServiceDefaults(this WebApplication app)
    {
        app.UseEdgeHardening();
        // A request the framework could not read or bind (malformed JSON, a wrong type, an unparsable route or query value)
        // is the client's error: 400 problem details, never 500 — whatever the environment's ThrowOnBadRequest says.
        app.UseExceptionHandler(new ExceptionHandlerOptions
        {
            StatusCodeSelector = e => e is Microsoft.AspNetCore.Http.BadHttpRequestException bad ? bad.StatusCode : Microsoft.AspNetCore.Http.StatusCodes.Status500InternalServerError,
            // A client's bad request is not a server error: no error log (its message may carry the client's values). An
            // exception a service's own IExceptionHandler answered (a dependency that did not answer: 503) logs its own warning.
            SuppressDiagnosticsCallback = c => c.Exception is Microsoft.AspNetCore.Http.BadHttpRequestException
                || c.ExceptionHandledBy == Microsoft.AspNetCore.Diagnostics.ExceptionHandledType.ExceptionHandlerService,
        });
        app.UseStatusCodePages();
        return app;
    }

    /// <summary>Maps <c>/health</c> (readiness: every dependency) and <c>/alive</c> (liveness: the process only) in every environment.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapHealthChecks(HealthPath, new HealthCheckOptions
        {
            ResponseWriter = HealthResponseWriter.WriteAsync,
        }).DisableHttpMetrics().AllowAnonymous();
        app.MapHealthChecks(AlivePath, new HealthCheckOptions
        {
            Predicate = r => r.Tags.Contains(LiveTag),
            ResponseWriter = HealthResponseWriter.WriteAsync,
        }).DisableHttpMetrics().AllowAnonymous();
        return app;
    }
}
