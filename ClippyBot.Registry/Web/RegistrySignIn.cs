using System.Security.Claims;
using ClippyBot.ServiceDefaults.Authentication;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;

namespace ClippyBot.Registry.Web;

/// <summary>Configuration section <c>Registry:SignIn</c>: the registry's pages sign people in at Identity as this client.</summary>
public sealed class RegistrySignInOptions
{
    public const string SectionName = "Registry:SignIn";

    public string ClientId { get; set; } = "clippybot-registry";

    /// <summary>The client's secret at Identity (≥ 43 characters; the AppHost generates one).</summary>
    public string ClientSecret { get; set; } = "";
}

/// <summary>
/// Who is calling: the API (<c>/api</c>, or any request with an Authorization header) takes Identity's bearer tokens and
/// never a cookie, so no page can be used to forge an API call; the pages take a session cookie made at sign-in through
/// Identity (code + PKCE). The cookie's principal is the validated <b>access token</b> for the registry audience — the same
/// claims (role, amr, email_verified) the API's policies read — so one set of policies serves both.
/// </summary>
public static class RegistrySignIn
{
    public const string Scheme = "registry";
    public const string CookieScheme = "registry-session";
    public const string OidcScheme = "registry-oidc";

    public static WebApplicationBuilder AddRegistrySignIn(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddOptions<RegistrySignInOptions>().Bind(builder.Configuration.GetSection(RegistrySignInOptions.SectionName))
            .Validate(o => o.ClientId.Length > 0 && o.ClientSecret.Length >= 43, "Registry:SignIn needs a ClientId and a ClientSecret of at least 43 characters (the AppHost generates one).")
            .ValidateOnStart();
        var plainHttp = builder.AllowsPlainHttp("Identity:AllowHttp");
        var cookieSecurity = plainHttp ? CookieSecurePolicy.SameAsRequest : CookieSecurePolicy.Always;
        builder.Services.AddAuthentication(Scheme)
            .AddPolicyScheme(Scheme, null, o => o.ForwardDefaultSelector = context =>
                context.Request.Path.StartsWithSegments("/api") || context.Request.Headers.Authorization.Count > 0
                    ? JwtBearerDefaults.AuthenticationScheme : CookieScheme)
            .AddCookie(CookieScheme, o =>
            {
                // __Host-: this origin only, https only; plain http only for local development.
                o.Cookie.Name = plainHttp ? "clippybot.registry" : "__Host-clippybot.registry";
                o.Cookie.SecurePolicy = cookieSecurity;
                o.Cookie.HttpOnly = true;
                // Lax, not Strict: the way back from Identity's sign-in page is a cross-site navigation. Every form posts
                // with an anti-forgery token, and the API never reads this cookie.
                o.Cookie.SameSite = SameSiteMode.Lax;
                // No longer than the access token it was made from (15 minutes); signing in again is silent while the
                // Identity session lasts.
                o.SlidingExpiration = false;
                o.ExpireTimeSpan = TimeSpan.FromMinutes(15);
                o.AccessDeniedPath = "/denied";
                o.ForwardChallenge = OidcScheme;
            })
            .AddOpenIdConnect(OidcScheme, _ => { })
            .AddIdentityAccessTokens(builder, ClippyBot.Contracts.Audiences.Registry);
        builder.Services.AddOptions<OpenIdConnectOptions>(OidcScheme)
            .Configure<IOptions<RegistrySignInOptions>, IHttpClientFactory>((o, signIn, clients) =>
            {
                o.SignInScheme = CookieScheme;
                o.MetadataAddress = builder.Configuration["Identity:MetadataAddress"] ?? "https+http://identity/.well-known/openid-configuration";
                o.RequireHttpsMetadata = !plainHttp;
                o.Backchannel = clients.CreateClient(IdentityAccessTokens.MetadataClient);
                o.ClientId = signIn.Value.ClientId;
                o.ClientSecret = signIn.Value.ClientSecret;
                o.ResponseType = OpenIdConnectResponseType.Code;
                o.ResponseMode = OpenIdConnectResponseMode.Query;
                o.UsePkce = true;
                o.MapInboundClaims = false;
                o.SaveTokens = false;
                o.UseTokenLifetime = true;
                o.GetClaimsFromUserInfoEndpoint = false;
                o.Scope.Clear();
                foreach (var scope in new[] { "openid", "profile", "email", ClippyBot.Contracts.ApiScopes.Registry })
                {
                    o.Scope.Add(scope);
                }
                o.CorrelationCookie.SameSite = SameSiteMode.Lax;
                o.CorrelationCookie.SecurePolicy = cookieSecurity;
                o.NonceCookie.SameSite = SameSiteMode.Lax;
                o.NonceCookie.SecurePolicy = cookieSecurity;
                o.Events = new OpenIdConnectEvents
                {
                    OnTokenValidated = UseAccessTokenClaimsAsync,
                    // A callback with an error, a forged or stale state, a refused code: a page saying so, never a 500.
                    OnRemoteFailure = context =>
                    {
                        context.HttpContext.RequestServices.GetRequiredService<ClippyBot.ServiceDefaults.SecurityMetrics>().AuthenticationFailed("registry_sign_in_failed");
                        context.Response.Redirect("/denied");
                        context.HandleResponse();
                        return Task.CompletedTask;
                    },
                };
            });
        return builder;
    }

    /// <summary>The session carries what the access token says (validated like any bearer token), not the ID token.</summary>
    private static async Task UseAccessTokenClaimsAsync(Microsoft.AspNetCore.Authentication.OpenIdConnect.TokenValidatedContext context)
    {
        var accessToken = context.TokenEndpointResponse?.AccessToken;
        var bearer = context.HttpContext.RequestServices.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme);
        if (accessToken is null || bearer.ConfigurationManager is null)
        {
            context.Fail("Identity issued no access token for the registry.");
            return;
        }
        var configuration = await bearer.ConfigurationManager.GetConfigurationAsync(context.HttpContext.RequestAborted);
        var parameters = bearer.TokenValidationParameters.Clone();
        parameters.ValidIssuer = configuration.Issuer;
        parameters.IssuerSigningKeys = configuration.SigningKeys;
        var result = await bearer.TokenHandlers[0].ValidateTokenAsync(accessToken, parameters);
        if (!result.IsValid || result.ClaimsIdentity.FindFirst("sub")?.Value != context.Principal?.FindFirst("sub")?.Value)
        {
            context.Fail("The access token did not validate for the registry.");
            return;
        }
        var identity = new ClaimsIdentity(result.ClaimsIdentity.Claims, CookieScheme, "name", "role");
        context.Principal = new ClaimsPrincipal(identity);
        if (result.SecurityToken is { } token)
        {
            context.Properties!.ExpiresUtc = new DateTimeOffset(token.ValidTo, TimeSpan.Zero);
        }
    }

    /// <summary>Signs the person out of the registry (the Identity session stays: other ClippyBot pages keep working).</summary>
    public static Task SignOutAsync(HttpContext context) => context.SignOutAsync(CookieScheme);
}
