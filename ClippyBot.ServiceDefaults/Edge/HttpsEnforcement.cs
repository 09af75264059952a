using ClippyBot.Contracts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Extensions;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Hosting;

namespace ClippyBot.ServiceDefaults.Edge;

/// <summary>What a service does with a request that arrived over plain http (<c>Edge:PlainHttp</c>).</summary>
public enum PlainHttpResponse
{
    /// <summary>400 problem <c>https-required</c>: right for APIs, whose clients must be fixed rather than silently bounced
    /// (the credentials they sent are already exposed; a redirect would hide that).</summary>
    Refuse,

    /// <summary>308 to the https URL for GET/HEAD (people typing an address), refuse for everything else.</summary>
    Redirect,
}

/// <summary>
/// Seed §2.1 "HTTPS for all endpoints": outside local development (or with <c>Edge:RequireHttps=true</c>) a request that did not
/// come over TLS — directly, or per <c>X-Forwarded-Proto</c> from a trusted proxy — is redirected or refused. Probes
/// (<c>/alive</c>, <c>/health</c>) stay reachable over http because orchestrators call them on the pod address.
/// </summary>
public static class HttpsEnforcement
{
    public static WebApplication UseHttpsEnforcement(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var section = app.Configuration.GetSection(EdgeOptions.SectionName);
        if (!section.GetValue("RequireHttps", !app.Environment.IsLocal()))
        {
            return app;
        }
        var response = section.GetValue("PlainHttp", PlainHttpResponse.Refuse);
        var httpsPort = section.GetValue<int?>("HttpsPort");
        app.Use((context, next) =>
        {
            var request = context.Request;
            if (request.IsHttps
                || request.Path.StartsWithSegments(ServiceDefaultsExtensions.AlivePath)
                || request.Path.StartsWithSegments(ServiceDefaultsExtensions.HealthPath))
            {
                return next(context);
            }
            if (response == PlainHttpResponse.Redirect && (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)))
            {
                var host = httpsPort is null or 443 ? new HostString(request.Host.Host) : new HostString(request.Host.Host, httpsPort.Value);
                var target = UriHelper.BuildAbsolute("https", host, request.PathBase, request.Path, request.QueryString);
                context.Response.StatusCode = StatusCodes.Status308PermanentRedirect;
                context.Response.Headers.Location = target;
                return Task.CompletedTask;
            }
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "HTTPS required",
                detail: "This service accepts requests over HTTPS only. Send the request to the https:// address; treat any credential sent over http as exposed.",
                type: ProblemTypes.HttpsRequired).ExecuteAsync(context);
        });
        return app;
    }
}
