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
        builder.Services.AddSingleton(sp => new SigningKeyCatchUp(sp.GetService<TimeProvider>() ?? TimeProvider.System));
        authentication.AddJwtBearer();
        builder.Services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<IHttpClientFactory, ValidatedTokenCache, SigningKeyCatchUp>((options, clients, validated, catchUp) =>
            {
                options.TokenHandlers.Clear();
                options.TokenHandlers.Add(validated);
                options.MetadataAddress = metadata;
                options.Backchannel = clients.CreateClient(MetadataClient);
                options.RequireHttpsMetadata = !plainHttp;
                options.MapInboundClaims = false;
                // A token signed by a key the handler has not met also makes it fetch Identity's keys for later requests: at most
                // every 2 s (the default is 5 minutes after the first time, which would leave a second rotation to SigningKeyCatchUp alone).
                options.RefreshInterval = SigningKeyCatchUp.MinimumInterval;
                options.Events = new JwtBearerEvents
                {
                    OnAuthenticationFailed = async c =>
                    {
                        // A key this service has not met yet (Identity's keys were just rotated): fetched once, then validated again.
                        if (!await catchUp.TryAgainAsync(c, validated))
                        {
                            c.HttpContext.RequestServices.GetRequiredService<SecurityMetrics>().AuthenticationFailed("token_invalid");
                        }
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
