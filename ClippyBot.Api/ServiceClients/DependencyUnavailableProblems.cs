using ClippyBot.Contracts;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace ClippyBot.Api.ServiceClients;

/// <summary>
/// One mapping, instead of a try/catch in every endpoint: a service the Api depends on that did not answer becomes a 503
/// problem with Retry-After — <c>pluginhost-unavailable</c> when it was the PluginHost, <c>dependency-unavailable</c>
/// otherwise (Identity's token endpoint). Endpoints that can do better (serve what is the Api's own, or audit a failed
/// containment action as 502) still catch it themselves.
/// </summary>
public sealed partial class DependencyUnavailableProblems(IProblemDetailsService problems, ILogger<DependencyUnavailableProblems> logger) : IExceptionHandler
{
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        if (exception is not ServiceUnavailableException unavailable)
        {
            return false;
        }
        var pluginHost = unavailable is Plugins.PluginHostUnavailableException;
        LogUnavailable(logger, pluginHost ? "PluginHost" : "Identity", unavailable.Message);
        httpContext.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        httpContext.Response.Headers.RetryAfter = ((int)RetryAfter.TotalSeconds).ToString(System.Globalization.CultureInfo.InvariantCulture);
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            Exception = exception,
            ProblemDetails = new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Type = pluginHost ? ProblemTypes.PluginhostUnavailable : ProblemTypes.DependencyUnavailable,
                Title = pluginHost ? "Plugins are unavailable" : "A service ClippyBot depends on is unavailable",
                // The reason (which may name configuration) goes to the log only.
                Detail = pluginHost ? "The plugin host did not answer. Retry shortly." : "A service ClippyBot depends on did not answer. Retry shortly.",
            },
        });
    }

    [LoggerMessage(LogLevel.Warning, "{Service} did not answer: {Reason}; answered 503")]
    private static partial void LogUnavailable(ILogger logger, string service, string reason);
}
