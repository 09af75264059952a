using ClippyBot.Contracts;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ClippyBot.ServiceDefaults.Edge;

/// <summary>Configuration section <c>Edge</c>.</summary>
public sealed class EdgeOptions
{
    public const string SectionName = "Edge";

    /// <summary>Largest request body accepted (bytes); endpoints that need more (file uploads) raise it for themselves.</summary>
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>Content-Security-Policy: APIs serve no active content; services with pages override it.</summary>
    public string ContentSecurityPolicy { get; set; } = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

    public string SecurityContact { get; set; } = "mailto:[email protected]";

    public string SecurityPolicyUrl { get; set; } = "https://clippybot.dev/security";

    /// <summary>
    /// Reverse proxies (CIDR, e.g. the CDN's ranges or the ingress) whose <c>X-Forwarded-For</c>/<c>-Proto</c> are believed.
    /// Empty: forwarded headers are ignored — otherwise any client could pick the address that per-IP limits count.
    /// </summary>
    public List<string> TrustedProxies { get; set; } = [];
}

/// <summary>
/// Seed §2.1/§4.1/§7 at every service's edge: security headers on every response (error pages included, hence
/// <c>OnStarting</c>), a request-body cap, HSTS outside development (with loopback no longer exempt), and RFC 9116
/// <c>/.well-known/security.txt</c>.
/// </summary>
public static class EdgeHardening
{
    public static IHostApplicationBuilder AddEdgeHardening(this IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(EdgeOptions.SectionName);
        builder.Services.Configure<EdgeOptions>(section);
        var maxBody = section.GetValue(nameof(EdgeOptions.MaxRequestBodyBytes), new EdgeOptions().MaxRequestBodyBytes);
        builder.Services.Configure<KestrelServerOptions>(o =>
        {
            o.Limits.MaxRequestBodySize = maxBody;
            // Seed §2.1: TLS 1.3 only on every HTTPS endpoint; a TLS 1.2 (or older) client fails the handshake.
            o.ConfigureHttpsDefaults(https => https.SslProtocols = System.Security.Authentication.SslProtocols.Tls13);
        });
        var proxies = section.GetSection(nameof(EdgeOptions.TrustedProxies)).GetChildren().Select(c => c.Value).OfType<string>().ToList();
        builder.Services.Configure<Microsoft.AspNetCore.Builder.ForwardedHeadersOptions>(o =>
        {
            o.ForwardedHeaders = Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedFor | Microsoft.AspNetCore.HttpOverrides.ForwardedHeaders.XForwardedProto;
            // The framework trusts loopback by default (and anyone when both lists are empty); we trust exactly what is configured.
            o.KnownProxies.Clear();
            o.KnownIPNetworks.Clear();
            foreach (var proxy in proxies)
            {
                o.KnownIPNetworks.Add(System.Net.IPNetwork.Parse(proxy.Contains('/', StringComparison.Ordinal) ? proxy : proxy + (proxy.Contains(':', StringComparison.Ordinal) ? "/128" : "/32")));
            }
        });
        builder.Services.AddHsts(o =>
        {
            o.MaxAge = TimeSpan.FromDays(365);
            o.IncludeSubDomains = true;
            o.ExcludedHosts.Clear();
        });
        return builder;
    }

    public static WebApplication UseEdgeHardening(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<EdgeOptions>>().Value;
        // HSTS is set with the other headers as the response starts (not by the framework's middleware, whose header the
        // exception handler clears with the rest of the response): every https answer carries it, errors included.
        var hsts = app.Environment.IsLocal() ? null : app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<Microsoft.AspNetCore.HttpsPolicy.HstsOptions>>().Value;
        var hstsValue = hsts is null ? null : $"max-age={(long)hsts.MaxAge.TotalSeconds}{(hsts.IncludeSubDomains ? "; includeSubDomains" : "")}{(hsts.Preload ? "; preload" : "")}";
        // With no proxy configured the middleware would believe any sender, so it is not used at all.
        if (options.TrustedProxies.Count > 0)
        {
            app.UseForwardedHeaders();
        }
        app.Use((context, next) =>
        {
            context.Response.OnStarting(() =>
            {
                var headers = context.Response.Headers;
                headers.XContentTypeOptions = "nosniff";
                headers["Referrer-Policy"] = "no-referrer";
                headers.XFrameOptions = "DENY";
                // A page may relax it for a sign-in popup (Identity's authorization flow, the Api's Scalar page); all others isolate.
                if (!headers.ContainsKey("Cross-Origin-Opener-Policy"))
                {
                    headers["Cross-Origin-Opener-Policy"] = "same-origin";
                }
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()";
                if (hstsValue is not null && context.Request.IsHttps)
                {
                    headers.StrictTransportSecurity = hstsValue;
                }
                if (!headers.ContainsKey("Content-Security-Policy"))
                {
                    headers.ContentSecurityPolicy = options.ContentSecurityPolicy;
                }
                return Task.CompletedTask;
            });
            // Declared bodies over the cap are refused before anything reads them (Kestrel also caps streamed bodies).
            var limit = context.GetEndpoint()?.Metadata.GetMetadata<Microsoft.AspNetCore.Http.Metadata.IRequestSizeLimitMetadata>()?.MaxRequestBodySize
                ?? options.MaxRequestBodyBytes;
            if (context.Request.ContentLength > limit)
            {
                return Results.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "Request body too large",
                    detail: $"This endpoint accepts at most {limit} bytes.", type: ProblemTypes.BodyTooLarge).ExecuteAsync(context);
            }
            return next(context);
        });
        app.UseHttpsEnforcement();
        app.MapGet("/.well-known/security.txt", (TimeProvider time) =>
        {
            // RFC 9116 §2.5.5: Expires must be less than a year ahead; computed per request, it never goes stale.
            var expires = time.GetUtcNow().AddDays(180).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            var text = $"Contact: {options.SecurityContact}\nExpires: {expires}\nPolicy: {options.SecurityPolicyUrl}\nPreferred-Languages: en\n";
            return Results.Text(text, "text/plain; charset=utf-8");
        }).AllowAnonymous().ExcludeFromDescription();
        return app;
    }
}
