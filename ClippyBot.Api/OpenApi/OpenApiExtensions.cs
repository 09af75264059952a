using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;
using Scalar.AspNetCore;

namespace ClippyBot.Api.OpenApi;

/// <summary>
/// The OpenAPI document (<c>/openapi/v1.json</c>) with both ways in declared — Identity's access tokens and workspace
/// API keys, each sent as a bearer token — and the Scalar UI (<c>/scalar</c>) for developers. Both are served in
/// Development only: production does not advertise its surface.
/// </summary>
public static class OpenApiExtensions
{
    /// <summary>The security scheme for signing in through Identity (authorization code + PKCE), when an authority is configured.</summary>
    public const string OAuth2Scheme = "oauth2";

    private static readonly string[] DevelopmentScopes = ["openid", "profile", "email", ClippyBot.Contracts.ApiScopes.Api];

    public static IHostApplicationBuilder AddApiDocumentation(this IHostApplicationBuilder builder)
    {
        var settings = builder.Configuration.GetSection(ApiDocumentationOptions.SectionName).Get<ApiDocumentationOptions>() ?? new();
        builder.Services.AddOpenApi(options => options.AddProblemResponses().AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new OpenApiInfo { Title = "ClippyBot API", Version = "v1" };
            document.Components ??= new OpenApiComponents();
            document.Components.SecuritySchemes = new Dictionary<string, IOpenApiSecurityScheme>
            {
                ["oidc"] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    BearerFormat = "JWT",
                    Description = "Access token from ClippyBot Identity (audience clippybot-api, scope api).",
                },
                ["apiKey"] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.Http,
                    Scheme = "bearer",
                    BearerFormat = "cbk_<public id>_<secret>",
                    Description = "Workspace API key; acts only inside its workspace and within its scopes.",
                },
            };
            document.Security =
            [
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("oidc", document)] = [] },
                new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference("apiKey", document)] = [] },
            ];
            if (settings.Authority is { } authority)
            {
                // Where to sign in: Scalar's "Authorize" (and any generated client) runs the code flow against Identity.
                document.Components.SecuritySchemes[OAuth2Scheme] = new OpenApiSecurityScheme
                {
                    Type = SecuritySchemeType.OAuth2,
                    Description = "Sign in with ClippyBot Identity (authorization code with PKCE); the access token is sent as a bearer token.",
                    Flows = new OpenApiOAuthFlows
                    {
                        AuthorizationCode = new OpenApiOAuthFlow
                        {
                            AuthorizationUrl = new Uri(authority, "/connect/authorize"),
                            TokenUrl = new Uri(authority, "/connect/token"),
                            RefreshUrl = new Uri(authority, "/connect/token"),
                            Scopes = DevelopmentScopes.ToDictionary(s => s, s => s == ClippyBot.Contracts.ApiScopes.Api ? "Call the ClippyBot API" : "Sign-in: " + s),
                        },
                    },
                };
                document.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(OAuth2Scheme, document)] = [ClippyBot.Contracts.ApiScopes.Api] });
            }
            return Task.CompletedTask;
        }));
        return builder;
    }

    public static WebApplication MapApiDocumentation(this WebApplication app)
    {
        if (app.Environment.IsLocal())
        {
            app.MapOpenApi().AllowAnonymous();
            // The reference UI is a script page; it gets its own (development-only) policy instead of the API's "none".
            var settings = app.Configuration.GetSection(ApiDocumentationOptions.SectionName).Get<ApiDocumentationOptions>() ?? new();
            app.MapScalarApiReference(options =>
            {
                if (settings.Authority is not null && settings.RedirectUri is { } redirect)
                {
                    // The development client (public, PKCE): its registered redirect is this page, so the code comes back here.
                    options.AddPreferredSecuritySchemes(OAuth2Scheme).AddAuthorizationCodeFlow(OAuth2Scheme, flow =>
                    {
                        flow.ClientId = settings.ClientId;
                        flow.Pkce = Pkce.Sha256;
                        flow.RedirectUri = redirect.ToString();
                        flow.SelectedScopes = DevelopmentScopes;
                    });
                }
            }).AllowAnonymous().AddEndpointFilter(async (context, next) =>
            {
                // connect-src names Identity too: Scalar redeems the authorization code at its token endpoint.
                context.HttpContext.Response.Headers.ContentSecurityPolicy =
                    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'"
                    + (settings.Authority is { } authority ? $"; connect-src 'self' {authority.GetLeftPart(UriPartial.Authority)}" : "");
                // Its "Authorize" opens Identity's sign-in in a popup and reads the code when the popup comes back to this page:
                // the page keeps its popups, and the popup's return (?code= or ?error=) must not be cut off from it either.
                var query = context.HttpContext.Request.Query;
                context.HttpContext.Response.Headers["Cross-Origin-Opener-Policy"] =
                    query.ContainsKey("code") || query.ContainsKey("error") ? "unsafe-none" : "same-origin-allow-popups";
                return await next(context);
            });
        }
        return app;
    }
}

/// <summary>Section <c>ApiDocumentation</c>: where the document tells clients to sign in (development; set by the AppHost).</summary>
public sealed class ApiDocumentationOptions
{
    public const string SectionName = "ApiDocumentation";

    /// <summary>Identity's public base address; none = the document declares bearer tokens only.</summary>
    public Uri? Authority { get; set; }

    /// <summary>The public client Scalar signs in as.</summary>
    public string ClientId { get; set; } = "clippybot-dev";

    /// <summary>Scalar's own page (<c>…/scalar/</c>), registered as a redirect of <see cref="ClientId"/>.</summary>
    public Uri? RedirectUri { get; set; }
}
