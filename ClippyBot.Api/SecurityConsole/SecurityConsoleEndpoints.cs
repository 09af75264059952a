using System.Reflection;
using Microsoft.Extensions.Options;

namespace ClippyBot.Api.SecurityConsole;

/// <summary>Section <c>SecurityConsole</c>: where the console signs administrators in (Identity) and as which client.</summary>
public sealed class SecurityConsoleOptions
{
    public const string SectionName = "SecurityConsole";

    /// <summary>Identity's public origin.</summary>
    public Uri? Authority { get; set; }

    /// <summary>A public, first-party client whose redirect URI is this service's <c>/console/</c> (the AppHost registers <c>clippybot-console</c>).</summary>
    public string ClientId { get; set; } = "";
}

/// <summary>
/// The security console for platform administrators (alerts, incidents, notification, investigation): a static page and
/// script served by the Api at <c>/console/</c> that signs in at Identity (authorization code + PKCE, a public first-party
/// client) and calls the administrator endpoints with that access token — so the same policy (the role, granted only with a
/// second factor) guards the page's every action, and nothing about the page needs a cookie (no CSRF to defend). The
/// token lives in the page's memory only. Everything is rendered as text, never as HTML: alert samples and subjects carry
/// what attackers sent.
/// </summary>
public static class SecurityConsoleEndpoints
{
    public const string Path = "/console/";

    private static readonly Dictionary<string, string> Assets = new(StringComparer.Ordinal)
    {
        [""] = "text/html; charset=utf-8",
        ["console.js"] = "text/javascript; charset=utf-8",
        ["console.css"] = "text/css; charset=utf-8",
    };

    public sealed record ConsoleConfiguration(string? Authority, string ClientId, string RedirectUri);

    public static IHostApplicationBuilder AddSecurityConsole(this IHostApplicationBuilder builder)
    {
        builder.Services.AddOptions<SecurityConsoleOptions>().Bind(builder.Configuration.GetSection(SecurityConsoleOptions.SectionName));
        return builder;
    }

    public static IEndpointRouteBuilder MapSecurityConsole(this IEndpointRouteBuilder app)
    {
        // The page and its script are public (they hold nothing); every call they make needs the administrator token.
        var console = app.MapGroup("/console").ExcludeFromDescription().AllowAnonymous();
        console.MapGet("/", (HttpContext context, IOptions<SecurityConsoleOptions> options) => Asset(context, "", options.Value));
        console.MapGet("/{asset}", (string asset, HttpContext context, IOptions<SecurityConsoleOptions> options) => Asset(context, asset, options.Value));
        console.MapGet("/config.json", (HttpContext context, IOptions<SecurityConsoleOptions> options) => TypedResults.Ok(new ConsoleConfiguration(
            options.Value.Authority?.GetLeftPart(UriPartial.Authority), options.Value.ClientId, $"{context.Request.Scheme}://{context.Request.Host}{Path}")));
        return app;
    }

    private static IResult Asset(HttpContext context, string name, SecurityConsoleOptions options)
    {
        if (!Assets.TryGetValue(name, out var contentType))
        {
            return TypedResults.NotFound();
        }
        var resource = typeof(SecurityConsoleEndpoints).Assembly.GetManifestResourceStream($"ClippyBot.Api.SecurityConsole.Assets.{(name.Length == 0 ? "index.html" : name)}")
                       ?? throw new InvalidOperationException($"The console's {name} is not embedded.");
        // The page runs only its own script and style, talks only to the Api and to Identity's token endpoint.
        var authority = options.Authority?.GetLeftPart(UriPartial.Authority) is { } origin ? " " + origin : "";
        context.Response.Headers.ContentSecurityPolicy =
            $"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'{authority}; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";
        context.Response.Headers.CacheControl = "no-cache";
        return TypedResults.Stream(resource, contentType);
    }
}
