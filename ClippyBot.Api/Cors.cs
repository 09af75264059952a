namespace ClippyBot.Api;

/// <summary>
/// Strict CORS: only the first-party web app's origins (<c>Api:AllowedOrigins</c>, passed by the AppHost) may call the
/// Api from a browser, with bearer tokens (no cookies, so no credentials mode), the methods the Api has and two headers.
/// </summary>
public static class ApiCors
{
    private const string Policy = "web-app";

    public static IHostApplicationBuilder AddApiCors(this IHostApplicationBuilder builder)
    {
        var origins = builder.Configuration.GetSection("Api:AllowedOrigins").GetChildren().Select(c => c.Value).OfType<string>().ToArray();
        builder.Services.AddCors(cors => cors.AddPolicy(Policy, policy => policy
            .WithOrigins(origins)
            .WithMethods(HttpMethods.Get, HttpMethods.Post, HttpMethods.Put, HttpMethods.Patch, HttpMethods.Delete)
            .WithHeaders("Authorization", "Content-Type")
            .SetPreflightMaxAge(TimeSpan.FromMinutes(10))));
        return builder;
    }

    public static WebApplication UseApiCors(this WebApplication app)
    {
        app.UseCors(Policy);
        return app;
    }
}
