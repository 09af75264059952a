namespace ClippyBot.AppHost.Infrastructure;

/// <summary>
/// Secrets and OIDC clients the Identity service needs, generated once per developer machine (persisted in the AppHost's
/// user secrets) and handed to the services that use them. In a deployment they come from the secret store.
/// </summary>
public static class IdentityConfiguration
{
    /// <summary>A public loopback client for trying the provider by hand (RFC 8252), documented in the README.</summary>
    public const string DevClientId = "clippybot-dev";
    public const string DevClientRedirect = "http://127.0.0.1:7890/callback";

    private static readonly string[] UserScopes = ["openid", "profile", "email", "offline_access", ClippyBot.Contracts.ApiScopes.Api, ClippyBot.Contracts.ApiScopes.Registry];

    public static IResourceBuilder<ProjectResource> WithIdentityConfiguration(
        this IResourceBuilder<ProjectResource> identity, IResourceBuilder<ParameterResource> apiServiceSecret)
    {
        ArgumentNullException.ThrowIfNull(identity);
        var builder = identity.ApplicationBuilder;
        var keyEncryptionKey = builder.AddGeneratedSecret("identity-key-encryption-key");
        var clientSecretHashKey = builder.AddGeneratedSecret("identity-client-secret-hash-key");
        var webRedirects = WebRedirectUris(builder);

        identity.WithEnvironment("Oidc__KeyEncryptionKey", keyEncryptionKey)
            .WithEnvironment("Oidc__ClientSecretHashKey", clientSecretHashKey)
            // Links in account emails point at Identity's own public endpoint, never at a request's Host header.
            .WithEnvironment("AccountSecurity__PublicBaseUrl", identity.GetEndpoint("https"));

        var index = 0;
        void Client(string id, string[] grants, string[] scopes, string[] redirects, IResourceBuilder<ParameterResource>? secret = null,
            bool introspection = false, bool refreshTokenInCookie = false, bool firstParty = false, bool developmentOnly = false)
        {
            var prefix = $"Oidc__Clients__{index++}__";
            identity.WithEnvironment(prefix + "ClientId", id);
            for (var i = 0; i < grants.Length; i++)
            {
                identity.WithEnvironment($"{prefix}GrantTypes__{i}", grants[i]);
            }
            for (var i = 0; i < scopes.Length; i++)
            {
                identity.WithEnvironment($"{prefix}Scopes__{i}", scopes[i]);
            }
            for (var i = 0; i < redirects.Length; i++)
            {
                identity.WithEnvironment($"{prefix}RedirectUris__{i}", redirects[i]);
                identity.WithEnvironment($"{prefix}PostLogoutRedirectUris__{i}", redirects[i]);
            }
            if (secret is not null)
            {
                identity.WithEnvironment(prefix + "ClientSecret", secret);
            }
            if (introspection)
            {
                identity.WithEnvironment(prefix + "Introspection", "true");
            }
            if (refreshTokenInCookie)
            {
                identity.WithEnvironment(prefix + "RefreshTokenInCookie", "true");
            }
            if (firstParty)
            {
                identity.WithEnvironment(prefix + "FirstParty", "true");
            }
            if (developmentOnly)
            {
                identity.WithEnvironment(prefix + "DevelopmentOnly", "true");
            }
        }

        Client("clippybot-web", ["authorization_code", "refresh_token"], UserScopes, webRedirects, refreshTokenInCookie: true, firstParty: true);
        // A public client with the api scope: a developer's tool, never registered outside Development (nor in publish mode).
        if (!builder.ExecutionContext.IsPublishMode)
        {
            // WithApiReferenceSignIn adds Scalar's page to this client's redirects by its position.
            if (index != DevClientIndex)
            {
                throw new InvalidOperationException($"The development client must be client {DevClientIndex}.");
            }
            Client(DevClientId, ["authorization_code", "refresh_token"], UserScopes, [DevClientRedirect], firstParty: true, developmentOnly: true);
        }
        Client("clippybot-api-service", ["client_credentials"],
            [ClippyBot.Contracts.ApiScopes.PluginHost, ClippyBot.Contracts.ApiScopes.IdentityContainment, ClippyBot.Contracts.ApiScopes.IdentityPrivacy, ClippyBot.Contracts.ApiScopes.IdentityAudit], [], apiServiceSecret);
        // The registry's pages come next (WithRegistrySignIn), by position like Scalar's redirect.
        if (index != RegistryClientIndex(builder))
        {
            throw new InvalidOperationException($"The registry's client must be client {RegistryClientIndex(builder)}.");
        }
        return identity;
    }

    private static int RegistryClientIndex(IDistributedApplicationBuilder builder) => builder.ExecutionContext.IsPublishMode ? 2 : 3;

    /// <summary>The operator console's client (run mode only) comes after the registry's.</summary>
    internal static int OperatorClientIndex(IDistributedApplicationBuilder builder) => RegistryClientIndex(builder) + 1;

    /// <summary>The security console's client comes last: after the operator's in run mode, after the registry's when published.</summary>
    internal static int SecurityConsoleClientIndex(IDistributedApplicationBuilder builder) => OperatorClientIndex(builder) + (builder.ExecutionContext.IsPublishMode ? 0 : 1);

    public const string SecurityConsoleClientId = "clippybot-console";

    /// <summary>
    /// The Api's security console (<c>/console/</c>) signs platform administrators in as a public first-party client: code +
    /// PKCE, the api scope, its own page as the only redirect. First-party so that an administrator's role reaches the Api —
    /// which Identity grants only to a login with a second factor.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithSecurityConsoleSignIn(this IResourceBuilder<ProjectResource> api, IResourceBuilder<ProjectResource> identity)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(identity);
        var prefix = $"Oidc__Clients__{SecurityConsoleClientIndex(api.ApplicationBuilder)}__";
        var page = ReferenceExpression.Create($"{api.GetEndpoint("https")}/console/");
        identity.WithEnvironment(prefix + "ClientId", SecurityConsoleClientId)
            .WithEnvironment(prefix + "DisplayName", "ClippyBot security console")
            .WithEnvironment(prefix + "GrantTypes__0", "authorization_code")
            .WithEnvironment(prefix + "Scopes__0", "openid")
            .WithEnvironment(prefix + "Scopes__1", ClippyBot.Contracts.ApiScopes.Api)
            .WithEnvironment(prefix + "FirstParty", "true")
            .WithEnvironment(prefix + "RedirectUris__0", page)
            .WithEnvironment(prefix + "PostLogoutRedirectUris__0", page);
        return api.WithEnvironment("SecurityConsole__Authority", identity.GetEndpoint("https"))
            .WithEnvironment("SecurityConsole__ClientId", SecurityConsoleClientId)
            .WithPageLink("/console/", "Security console (alerts, incidents)");
    }

    /// <summary>
    /// The registry's pages sign people in at Identity as a confidential first-party client (code + PKCE, the registry
    /// scope; first-party so that reviewers' role reaches the registry), redirected back to the registry's own endpoint.
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithRegistrySignIn(this IResourceBuilder<ProjectResource> registry, IResourceBuilder<ProjectResource> identity)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(identity);
        var secret = registry.ApplicationBuilder.AddGeneratedSecret("registry-client-secret");
        var prefix = $"Oidc__Clients__{RegistryClientIndex(registry.ApplicationBuilder)}__";
        string[] scopes = ["openid", "profile", "email", ClippyBot.Contracts.ApiScopes.Registry];
        identity.WithEnvironment(prefix + "ClientId", "clippybot-registry")
            .WithEnvironment(prefix + "DisplayName", "ClippyBot plugin registry")
            .WithEnvironment(prefix + "ClientSecret", secret)
            .WithEnvironment(prefix + "GrantTypes__0", "authorization_code")
            .WithEnvironment(prefix + "FirstParty", "true")
            .WithEnvironment(prefix + "RedirectUris__0", ReferenceExpression.Create($"{registry.GetEndpoint("https")}/signin-oidc"))
            .WithEnvironment(prefix + "PostLogoutRedirectUris__0", ReferenceExpression.Create($"{registry.GetEndpoint("https")}/"));
        for (var i = 0; i < scopes.Length; i++)
        {
            identity.WithEnvironment($"{prefix}Scopes__{i}", scopes[i]);
        }
        return registry.WithReference(identity)
            .WithEnvironment("Registry__SignIn__ClientId", "clippybot-registry")
            .WithEnvironment("Registry__SignIn__ClientSecret", secret);
    }

    private const int DevClientIndex = 1;

    /// <summary>
    /// Scalar on the Api signs in as the development client: its page becomes a redirect URI of that client, and the Api's
    /// OpenAPI document names Identity as the place to sign in (the "Authorize" button's code flow).
    /// </summary>
    public static IResourceBuilder<ProjectResource> WithApiReferenceSignIn(this IResourceBuilder<ProjectResource> api, IResourceBuilder<ProjectResource> identity)
    {
        ArgumentNullException.ThrowIfNull(api);
        ArgumentNullException.ThrowIfNull(identity);
        if (api.ApplicationBuilder.ExecutionContext.IsPublishMode)
        {
            return api;
        }
        var scalarPage = ReferenceExpression.Create($"{api.GetEndpoint("https")}/scalar/");
        identity.WithEnvironment($"Oidc__Clients__{DevClientIndex}__RedirectUris__1", scalarPage);
        return api.WithEnvironment("ApiDocumentation__Authority", identity.GetEndpoint("https"))
            .WithEnvironment("ApiDocumentation__ClientId", DevClientId)
            .WithEnvironment("ApiDocumentation__RedirectUri", scalarPage);
    }

    /// <summary>The first-party web app's redirect URIs (<c>Identity:WebRedirectUris</c>), default a local Vite dev server.</summary>
    public static string[] WebRedirectUris(IDistributedApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var configured = builder.Configuration.GetSection("Identity:WebRedirectUris").GetChildren().Select(c => c.Value).OfType<string>().ToArray();
        return configured.Length > 0 ? configured : ["http://localhost:5173/callback"];
    }

    /// <summary>Passes the web app's origins to a service as <c>Api:AllowedOrigins</c> (its CORS allow-list) and its invitation page.</summary>
    public static IResourceBuilder<ProjectResource> WithWebAppOrigins(this IResourceBuilder<ProjectResource> service)
    {
        ArgumentNullException.ThrowIfNull(service);
        var origins = WebRedirectUris(service.ApplicationBuilder).Select(u => new Uri(u).GetLeftPart(UriPartial.Authority)).Distinct().ToArray();
        for (var i = 0; i < origins.Length; i++)
        {
            service.WithEnvironment($"Api__AllowedOrigins__{i}", origins[i]);
        }
        // Invitation emails link to the web app's accept page.
        return service.WithEnvironment("Invitations__AcceptUrl", origins[0] + "/invitations/accept");
    }

    /// <summary>
    /// A random secret (48 letters and digits, ≈ 285 bits) generated once per developer machine and kept in the AppHost's
    /// user secrets, so keys sealed with it stay readable across runs.
    /// </summary>
    public static IResourceBuilder<ParameterResource> AddGeneratedSecret(this IDistributedApplicationBuilder builder, string name) =>
        builder.AddParameter(name, new GenerateParameterDefault { MinLength = 48, Special = false }, secret: true, persist: true);
}
