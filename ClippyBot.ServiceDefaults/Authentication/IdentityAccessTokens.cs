using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.IdentityModel.Tokens;

namespace ClippyBot.ServiceDefaults.Authentication;

/// <summary>
/// How every resource server accepts Identity's access tokens, validated locally: signature against Identity's JWKS (found
/// by service discovery, fetched through the resilient HttpClient), issuer from its discovery document, the service's own
/// audience, type <c>at+jwt</c>, lifetime with 30 s of skew, claims as issued (no inbound mapping).
/// </summary>
public static class IdentityAccessTokens
{
    public const string MetadataClient = "identity-metadata";

    public static AuthenticationBuilder AddIdentityAccessTokens(this AuthenticationBuilder authentication, IHostApplicationBuilder builder, string audience)
    {
        ArgumentNullException.ThrowIfNull(authentication);
        ArgumentNullException.ThrowIfNull(builder);
        var metadata = builder.Configuration["Identity:MetadataAddress"] ?? "https+http://identity/.well-known/openid-configuration";
        var plainHttp = builder.AllowsPlainHttp("Identity:AllowHttp");
        builder.Services.AddHttpClient(MetadataClient);
        // Claims as issued (no inbound mapping), as MapInboundClaims = false below would set on the default handler.
        builder.Services.AddSingleton(sp => new ValidatedTokenCache(sp.GetService<TimeProvider>() ?? TimeProvider.System) { MapInboundClaims = false });
        authentication.AddJwtBearer();
        builder.Services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IHttpClientFactory, ValidatedTokenCache>((options, clients, validated) =>
            {
                options.TokenHandlers.Clear();
                options.TokenHandlers.Add(validated);
                options.MetadataAddress = metadata;
                options.Backchannel = clients.CreateClient(MetadataClient);
                options.RequireHttpsMetadata = !plainHttp;
                options.MapInboundClaims = false;
                options.Events = new JwtBearerEvents
                {
                    OnAuthenticationFailed = c =>
                    {
                        c.HttpContext.RequestServices.GetRequiredService<SecurityMetrics>().AuthenticationFailed("token_invalid");
                        return Task.CompletedTask;
                    },
                };
                options.TokenValidationParameters = new TokenValidationParameters
                {
                    ValidAudience = audience,
                    ValidTypes = ["at+jwt"],
                    ClockSkew = TimeSpan.FromSeconds(30),
                    NameClaimType = "name",
                    RequireExpirationTime = true,
                    RequireSignedTokens = true,
                    LifetimeValidator = validated.IsWithinLifetime,
                };
            });
        return authentication;
    }
}
