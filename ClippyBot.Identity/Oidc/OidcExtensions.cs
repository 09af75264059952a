using ClippyBot.Identity.Crypto;
using ClippyBot.Identity.Data;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Oidc;

public static class OidcExtensions
{
    public static IHostApplicationBuilder AddOidcServer(this IHostApplicationBuilder builder)
    {
        var section = builder.Configuration.GetSection(OidcOptions.SectionName);
        builder.Services.AddOptions<OidcOptions>().Bind(section)
            .Validate(o => o.KeyEncryptionKey.Length >= OidcOptions.MinimumSecretLength, "Oidc:KeyEncryptionKey must be a random secret of at least 43 characters.")
            .Validate(o => o.ClientSecretHashKey.Length >= OidcOptions.MinimumSecretLength, "Oidc:ClientSecretHashKey must be a random secret of at least 43 characters.")
            .Validate(o => o.AccessTokenLifetime > TimeSpan.Zero && o.AccessTokenLifetime <= TimeSpan.FromMinutes(15), "Oidc:AccessTokenLifetime must be at most 15 minutes.")
            .Validate(o => o.IdentityTokenLifetime > TimeSpan.Zero && o.IdentityTokenLifetime <= TimeSpan.FromMinutes(15), "Oidc:IdentityTokenLifetime must be at most 15 minutes.")
            .Validate(o => o.PruneInterval >= TimeSpan.FromMinutes(1) && o.PruneInterval <= TimeSpan.FromDays(7), "Oidc:PruneInterval must be between 1 minute and 7 days.")
            .Validate(o => o.KeyRingRefreshInterval >= TimeSpan.FromSeconds(10) && o.KeyRingRefreshInterval <= TimeSpan.FromDays(1), "Oidc:KeyRingRefreshInterval must be between 10 seconds and 1 day.")
            .Validate(o => o.SigningKeyPublishAhead < o.SigningKeyRotationPeriod, "Oidc:SigningKeyPublishAhead must be shorter than Oidc:SigningKeyRotationPeriod.")
            .Validate(o => o.ClientCacheSize >= 100, "Oidc:ClientCacheSize must be at least 100.")
            .Validate(o => string.IsNullOrEmpty(o.Issuer) || Uri.TryCreate(o.Issuer, UriKind.Absolute, out var issuer) && issuer.Scheme == Uri.UriSchemeHttps,
                "Oidc:Issuer must be an absolute https URI.")
            .ValidateOnStart();
        var oidc = section.Get<OidcOptions>() ?? new OidcOptions();
        if (!builder.Environment.IsLocal() && string.IsNullOrEmpty(oidc.Issuer))
        {
            throw new InvalidOperationException("Oidc:Issuer must be set outside local development (e.g. https://id.example.com/): tokens must not take their issuer from the request's Host header.");
        }
        ClientSeeder.ValidateForEnvironment(oidc.Clients, builder.Environment);

        builder.Services.AddSingleton<SigningKeyRing>();
        builder.Services.AddSingleton<ClientLookupCache>();
        builder.Services.AddSingleton(sp => new SecretHasher(OidcOptions.DeriveKey(sp.GetRequiredService<IOptions<OidcOptions>>().Value.ClientSecretHashKey, "client-secrets")));
        builder.Services.AddSingleton<IConfigureOptions<OpenIddictServerOptions>, ServerKeysSetup>();
        var allowHttp = builder.AllowsPlainHttp("Oidc:AllowHttp");
        builder.Services.AddSingleton(sp => ActivatorUtilities.CreateInstance<ClientCredentialsIssuer>(sp, allowHttp));
        builder.Services.AddSingleton<IOptionsChangeTokenSource<OpenIddictServerOptions>, ServerKeysChangeTokenSource>();
        builder.Services.AddSingleton<IOptionsChangeTokenSource<OpenIddict.Validation.OpenIddictValidationOptions>, ValidationKeysChangeTokenSource>();
        builder.Services.AddHostedService<KeyRingRefreshService>();
        builder.Services.AddSingleton<SigningKeyChanges>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<SigningKeyChanges>());
        builder.Services.AddSingleton<ClientSeeder>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<ClientSeeder>());
        builder.Services.AddSingleton<RevocationMarkers>();
        builder.Services.AddOptions<RevocationOptions>().Bind(builder.Configuration.GetSection(RevocationOptions.SectionName))
            .Validate(o => o.RepublishInterval >= TimeSpan.FromSeconds(1), "Revocation:RepublishInterval must be at least a second.").ValidateOnStart();
        builder.Services.AddSingleton<RevocationRepublisher>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<RevocationRepublisher>());
        builder.Services.AddOptions<TokenThrottleOptions>().Bind(builder.Configuration.GetSection(TokenThrottleOptions.SectionName))
            .Validate(o => o.MaxFailuresPerWindow >= 1 && o.Window >= TimeSpan.FromSeconds(10), "TokenThrottle needs MaxFailuresPerWindow ≥ 1 and a Window of at least 10 seconds.")
            .ValidateOnStart();
        builder.Services.AddSingleton<TokenEndpointThrottle>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TokenEndpointThrottle>());
        builder.Services.AddSingleton<TokenPruningService>();
        builder.Services.AddHostedService(sp => sp.GetRequiredService<TokenPruningService>());
        builder.Services.AddScoped<SessionRevoker>();
        builder.Services.AddScoped<Sessions.SessionStore>();
        builder.Services.AddHealthChecks().AddCheck<ClientsSeededHealthCheck>("oidc-clients");

        // Browser clients call the token endpoint cross-origin: those that keep their refresh token in our cookie (with
        // credentials), and public clients whose https redirect is a web page (Scalar in development: no secret, PKCE).
        // The refresh cookie is honoured only from its own client's origins, so the second kind gains nothing from it.
        var browserOrigins = RefreshTokenCookie.OriginsByClient(oidc).Values.SelectMany(o => o)
            .Concat(oidc.Clients
                .Where(c => c.ClientSecret is null && (!c.DevelopmentOnly || builder.Environment.IsDevelopment()))
                // Plain http only for a loopback page on a developer's machine (the tests' browser, too).
                .SelectMany(c => c.RedirectUris).Select(u => new Uri(u)).Where(u => u.Scheme == Uri.UriSchemeHttps || (u.IsLoopback && builder.Environment.IsLocal()))
                .Select(u => u.GetLeftPart(UriPartial.Authority)))
            .Distinct(StringComparer.OrdinalIgnoreCase).ToArray();
        builder.Services.AddCors(cors => cors.AddPolicy(RefreshTokenCookie.CorsPolicy, policy => policy
            .WithOrigins(browserOrigins)
            .WithMethods(HttpMethods.Post)
            .WithHeaders("Content-Type", RefreshTokenCookie.CsrfHeader)
            .AllowCredentials()));

        builder.Services.AddOpenIddict()
            .AddCore(core =>
            {
                core.UseEntityFrameworkCore().UseDbContext<IdentityDataContext>();
                core.ReplaceApplicationManager(typeof(ClippyApplicationManager<>));
            })
            .AddServer(server =>
            {
                if (!string.IsNullOrEmpty(oidc.Issuer))
                {
                    server.SetIssuer(new Uri(oidc.Issuer, UriKind.Absolute));
                }
                server.SetAuthorizationEndpointUris("connect/authorize")
                    .SetTokenEndpointUris("connect/token")
                    .SetUserInfoEndpointUris("connect/userinfo")
                    .SetIntrospectionEndpointUris("connect/introspect")
                    .SetRevocationEndpointUris("connect/revoke")
                    .SetEndSessionEndpointUris("connect/endsession")
                    .SetJsonWebKeySetEndpointUris(".well-known/jwks");

                // No implicit, hybrid or password grant: they are simply not enabled.
                server.AllowAuthorizationCodeFlow()
                    .AllowClientCredentialsFlow()
                    .AllowRefreshTokenFlow()
                    .RequireProofKeyForCodeExchange();

                server.RegisterScopes([.. OidcResources.UserScopes, ClippyBot.Contracts.ApiScopes.Registry, OidcResources.PluginHostScope, OidcResources.ContainmentScope, OidcResources.PrivacyScope, OidcResources.AuditScope, ClippyBot.Contracts.ApiScopes.Operations, ClippyBot.Contracts.ApiScopes.Metrics]);

                // Resource servers validate access tokens locally: signed JWTs, not encrypted ones.
                server.DisableAccessTokenEncryption();
                server.SetAccessTokenLifetime(oidc.AccessTokenLifetime)
                    .SetIdentityTokenLifetime(oidc.IdentityTokenLifetime)
                    .SetAuthorizationCodeLifetime(oidc.AuthorizationCodeLifetime)
                    .SetRefreshTokenLifetime(oidc.RefreshTokenLifetime)
                    .SetRefreshTokenReuseLeeway(oidc.RefreshTokenReuseLeeway);

                // Only S256: "plain" PKCE gives no protection against a stolen code.
                server.Configure(options =>
                {
                    options.CodeChallengeMethods.Clear();
                    options.CodeChallengeMethods.Add(CodeChallengeMethods.Sha256);
                });

                // Unknown client and wrong secret must read the same, or the answer tells which client ids exist.
                // Failed requests count against the address (TokenEndpointThrottle).
                server.AddEventHandler<OpenIddictServerEvents.ApplyTokenResponseContext>(h => h.UseInlineHandler(c => OnResponseAsync(c, c.Response)).SetOrder(int.MinValue));
                server.AddEventHandler<OpenIddictServerEvents.ApplyIntrospectionResponseContext>(h => h.UseInlineHandler(c => OnResponseAsync(c, c.Response)).SetOrder(int.MinValue));
                server.AddEventHandler<OpenIddictServerEvents.ApplyRevocationResponseContext>(h => h.UseInlineHandler(c => OnResponseAsync(c, c.Response)).SetOrder(int.MinValue));

                // RFC 6749 §3.1/§3.2: a parameter sent twice is an error, not a choice for the server to make — at every endpoint;
                // and no parameter is longer than its bound (ParameterBounds), checked before any lookup.
                server.AddEventHandler<OpenIddictServerEvents.ValidateAuthorizationRequestContext>(h => h.UseInlineHandler(RejectRepeatedParameters).SetOrder(int.MinValue));
                server.AddEventHandler<OpenIddictServerEvents.ValidateTokenRequestContext>(h => h.UseInlineHandler(RejectRepeatedParameters).SetOrder(int.MinValue));
                server.AddEventHandler<OpenIddictServerEvents.ValidateIntrospectionRequestContext>(h => h.UseInlineHandler(RejectRepeatedParameters).SetOrder(int.MinValue));
                server.AddEventHandler<OpenIddictServerEvents.ValidateRevocationRequestContext>(h => h.UseInlineHandler(RejectRepeatedParameters).SetOrder(int.MinValue));
                server.AddEventHandler<OpenIddictServerEvents.ValidateEndSessionRequestContext>(h => h.UseInlineHandler(RejectRepeatedParameters).SetOrder(int.MinValue));
                server.AddEventHandler<OpenIddictServerEvents.ValidateUserInfoRequestContext>(h => h.UseInlineHandler(RejectRepeatedParameters).SetOrder(int.MinValue));

                // The per-address block holds for every spelling of these endpoints that OpenIddict accepts (trailing slash, case…):
                // it is decided on the endpoint OpenIddict recognised, not on the path.
                server.AddEventHandler<OpenIddictServerEvents.ValidateTokenRequestContext>(h => h.UseInlineHandler(RefuseBlockedAddressAsync).SetOrder(int.MinValue + 1));
                server.AddEventHandler<OpenIddictServerEvents.ValidateIntrospectionRequestContext>(h => h.UseInlineHandler(RefuseBlockedAddressAsync).SetOrder(int.MinValue + 1));
                server.AddEventHandler<OpenIddictServerEvents.ValidateRevocationRequestContext>(h => h.UseInlineHandler(RefuseBlockedAddressAsync).SetOrder(int.MinValue + 1));

                RefreshTokenCookie.Register(server);
                TokenStoragePolicy.Register(server);

                var aspNetCore = server.UseAspNetCore()
                    .EnableAuthorizationEndpointPassthrough()
                    .EnableTokenEndpointPassthrough()
                    .EnableUserInfoEndpointPassthrough()
                    .EnableEndSessionEndpointPassthrough();
                if (allowHttp)
                {
                    // Local development and tests run on plain http behind no proxy; production terminates TLS 1.3.
                    aspNetCore.DisableTransportSecurityRequirement();
                }
            })
            // Identity is also a resource server for its own internal API (containment), validating its own tokens in-process.
            .AddValidation(validation =>
            {
                validation.UseLocalServer();
                validation.AddAudiences(OidcResources.Identity);
                validation.UseAspNetCore();
            });
        return builder;
    }

    /// <summary>
    /// CORS for the token endpoint, then the client-credentials fast path; both must run before authentication, where
    /// OpenIddict answers.
    /// </summary>
    public static WebApplication UseOidcTokenEndpoint(this WebApplication app)
    {
        app.UseWhen(c => c.Request.Path.StartsWithSegments(ClientCredentialsIssuer.TokenPath), branch => branch.UseCors(RefreshTokenCookie.CorsPolicy));
        var throttle = app.Services.GetRequiredService<TokenEndpointThrottle>();
        app.UseWhen(c => HttpMethods.IsPost(c.Request.Method) && IsThrottledEndpoint(c.Request.Path),
            branch => branch.Use((context, next) => throttle.BlockedUntil(context.Connection.RemoteIpAddress) is { } until
                ? TooManyFailuresAsync(context, until)
                : next(context)));
        var issuer = app.Services.GetRequiredService<ClientCredentialsIssuer>();
        app.UseWhen(ClientCredentialsIssuer.IsTokenRequest, branch => branch.Use(async (context, next) =>
        {
            if (!await issuer.TryIssueAsync(context))
            {
                await next(context);
            }
        }));
        return app;
    }

    private static readonly string[] ThrottledPaths = ["/connect/token", "/connect/introspect", "/connect/revoke"];

    /// <summary>The early check (before the fast path) on the path as OpenIddict would match it: any case, trailing slashes.</summary>
    internal static bool IsThrottledEndpoint(PathString path)
    {
        var value = path.Value.AsSpan().TrimEnd('/');
        foreach (var candidate in ThrottledPaths)
        {
            if (value.Equals(candidate, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>The authoritative check, on the endpoint OpenIddict recognised, whatever the request's spelling.</summary>
    private static async ValueTask RefuseBlockedAddressAsync<TContext>(TContext context) where TContext : OpenIddictServerEvents.BaseValidatingContext
    {
        if (Microsoft.AspNetCore.OpenIddictServerAspNetCoreHelpers.GetHttpRequest(context.Transaction)?.HttpContext is { } http
            && http.RequestServices.GetRequiredService<TokenEndpointThrottle>().BlockedUntil(http.Connection.RemoteIpAddress) is { } until)
        {
            await TooManyFailuresAsync(http, until);
            context.HandleRequest();
        }
    }

    /// <summary>An OAuth error body (what clients of these endpoints parse) with 429 and Retry-After.</summary>
    private static Task TooManyFailuresAsync(HttpContext context, DateTimeOffset until)
    {
        var seconds = Math.Max(1, (long)Math.Ceiling((until - context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow()).TotalSeconds));
        context.Response.StatusCode = StatusCodes.Status429TooManyRequests;
        context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.Headers.CacheControl = "no-store";
        return context.Response.WriteAsJsonAsync(new Dictionary<string, string>
        {
            [OpenIddict.Abstractions.OpenIddictConstants.Parameters.Error] = Errors.InvalidRequest,
            [OpenIddict.Abstractions.OpenIddictConstants.Parameters.ErrorDescription] = $"Too many failed requests from this address; retry in {seconds} seconds.",
        });
    }

    public static WebApplication MapOidcEndpoints(this WebApplication app)
    {
        OidcEndpoints.Map(app);
        return app;
    }

    /// <summary>RFC 8707 resource indicators (and token-exchange audiences) are the parameters that may legitimately repeat.</summary>
    private static readonly HashSet<string> RepeatableParameters = new(StringComparer.Ordinal) { Parameters.Resource, Parameters.Audience };

    private static ValueTask RejectRepeatedParameters<TContext>(TContext context) where TContext : OpenIddictServerEvents.BaseValidatingContext
    {
        if (context.Transaction.Request is not { } request)
        {
            return default;
        }
        if (ParameterBounds.FirstOversize(request) is { } oversize)
        {
            context.Reject(Errors.InvalidRequest, $"The '{oversize}' parameter is too long.");
            return default;
        }
        foreach (var (name, value) in request.GetParameters())
        {
            if (value.Count > 1 && !RepeatableParameters.Contains(name))
            {
                context.Reject(Errors.InvalidRequest, $"The '{name}' parameter must not be sent more than once.");
                break;
            }
        }
        return default;
    }

    private static async ValueTask OnResponseAsync(OpenIddictServerEvents.BaseContext context, OpenIddict.Abstractions.OpenIddictResponse response)
    {
        if (response.Error == Errors.InvalidClient)
        {
            response.ErrorDescription = "Client authentication failed.";
            response.ErrorUri = null;
        }
        if (response.Error is Errors.InvalidClient or Errors.InvalidGrant
            && Microsoft.AspNetCore.OpenIddictServerAspNetCoreHelpers.GetHttpRequest(context.Transaction)?.HttpContext is { } http)
        {
            await http.RequestServices.GetRequiredService<TokenEndpointThrottle>().RecordFailureAsync(http.Connection.RemoteIpAddress);
        }
    }
}
