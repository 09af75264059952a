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
    public static IHostApplicationBuilder AddApiDocumentation(this IHostApplicationBuilder builder)
    {
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
            app.MapScalarApiReference().AllowAnonymous().AddEndpointFilter(async (context, next) =>
            {
                context.HttpContext.Response.Headers.ContentSecurityPolicy =
                    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'";
                return await next(context);
            });
        }
        return app;
    }
}
