using ClippyBot.Contracts;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace ClippyBot.Api.ServiceClients;

/// <summary>
/// One mapping, instead of a try/catch in every endpoint: a service the Api depends on that did not answer becomes a 503
/// problem with Retry-After — <c>pluginhost-unavailable</c> when it was the PluginHost, <c>dependency-unavailable</c>
/// otherwise (Identity's token endpoint). A PluginHost refusal (4xx) is passed on with its status and its problem's type,
/// title and detail (never its internal instance path); without a problem document it becomes <c>plugin-not-found</c>
/// (404) or <c>plugin-request-refused</c>. Endpoints that can do better (serve what is the Api's own, audit a refused
/// publication, or audit a failed containment action as 502) still catch them themselves.
/// </summary>
public sealed partial class DependencyUnavailableProblems(IProblemDetailsService problems, ILogger<DependencyUnavailableProblems> logger) : IExceptionHandler
{
    public static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        if (exception is Plugins.PluginHostClient.PluginHostProblemException refused && (int)refused.Status is >= 400 and < 500)
        {
            return await PassOnAsync(httpContext, refused);
        }
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

    private async ValueTask<bool> PassOnAsync(HttpContext httpContext, Plugins.PluginHostClient.PluginHostProblemException refused)
    {
        var status = (int)refused.Status;
        string? Field(string name) => refused.Problem.ValueKind == System.Text.Json.JsonValueKind.Object
            && refused.Problem.TryGetProperty(name, out var value) && value.ValueKind == System.Text.Json.JsonValueKind.String ? value.GetString() : null;
        httpContext.Response.StatusCode = status;
        return await problems.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = new ProblemDetails
            {
                Status = status,
                Type = Field("type") ?? (status == StatusCodes.Status404NotFound ? ProblemTypes.PluginNotFound : ProblemTypes.PluginRequestRefused),
                Title = Field("title") ?? (status == StatusCodes.Status404NotFound ? "No such plugin" : "The plugin host refused the request"),
                Detail = Field("detail"),
            },
        });
    }

    [LoggerMessage(LogLevel.Warning, "{Service} did not answer: {Reason}; answered 503")]
    private static partial void LogUnavailable(ILogger logger, string service, string reason);
}
