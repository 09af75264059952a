using System.Net;
using System.Security.Cryptography;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Rig;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Identity;

/// <summary>The Identity service in-process on its own fresh database, with the clients the tests use.</summary>
public static class IdentityHost
{
    /// <summary>First-party browser client: refresh token in a cookie.</summary>
    public const string WebClient = "clippybot-web";
    public const string WebOrigin = "https://app.test";

    /// <summary>Public client with standard (body) refresh tokens; most flow tests use it.</summary>
    public const string DevClient = "clippybot-dev";
    public const string WebRedirect = "https://app.test/callback";
    public const string WebSignedOut = "https://app.test/signed-out";
    public const string ServiceClient = "clippybot-api-service";
    public const string ThirdPartyClient = "partner-app";
    public const string ApiResourceClient = "clippybot-api";

    public static readonly string ServiceSecret = RandomNumberGenerator.GetHexString(64);
    public static readonly string ApiResourceSecret = RandomNumberGenerator.GetHexString(64);

    public static async Task<ServiceFactory<IdentityDataContext>> StartAsync(
        CancellationToken ct, IDictionary<string, string?>? overrides = null, Action<IServiceCollection>? configureServices = null,
        string environment = "Testing")
    {
        var factory = await CreateAsync(ct, overrides, configureServices, environment);
        await WaitHealthyAsync(factory, ct);
        return factory;
    }

    /// <summary>Another Identity with <paramref name="first"/>'s settings but for <paramref name="overrides"/> (a restored database, say).</summary>
    public static async Task<ServiceFactory<IdentityDataContext>> StartReplicaAsync(
        ServiceFactory<IdentityDataContext> first, IReadOnlyDictionary<string, string?> overrides, CancellationToken ct)
    {
        var settings = new Dictionary<string, string?>(first.Settings);
        foreach (var (key, value) in overrides)
        {
            settings[key] = value;
        }
        var replica = new ServiceFactory<IdentityDataContext>(settings);
        replica.ClientOptions.BaseAddress = new Uri("https://localhost");
        replica.ClientOptions.AllowAutoRedirect = false;
        await WaitHealthyAsync(replica, ct);
        return replica;
    }

    private static async Task WaitHealthyAsync(ServiceFactory<IdentityDataContext> factory, CancellationToken ct)
    {
        using var probe = factory.CreateClient();
        await Poll.UntilAsync(async () =>
        {
            using var response = await probe.GetAsync(new Uri("/health", UriKind.Relative), ct);
            return response.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(60), "identity healthy", ct);
    }

    /// <summary>Identity configured on a fresh database, not started yet (so a test may still choose Kestrel).</summary>
    public static async Task<ServiceFactory<IdentityDataContext>> CreateAsync(
        CancellationToken ct, IDictionary<string, string?>? overrides = null, Action<IServiceCollection>? configureServices = null,
        string environment = "Testing")
    {
        var settings = new Dictionary<string, string?>
        {
            ["Oidc:KeyEncryptionKey"] = RandomNumberGenerator.GetHexString(64),
            ["Oidc:ClientSecretHashKey"] = RandomNumberGenerator.GetHexString(64),
            ["Oidc:Clients:0:ClientId"] = WebClient,
            ["Oidc:Clients:0:GrantTypes:0"] = "authorization_code",
            ["Oidc:Clients:0:GrantTypes:1"] = "refresh_token",
            ["Oidc:Clients:0:Scopes:0"] = "openid",
            ["Oidc:Clients:0:Scopes:1"] = "profile",
            ["Oidc:Clients:0:Scopes:2"] = "email",
            ["Oidc:Clients:0:Scopes:3"] = "offline_access",
            ["Oidc:Clients:0:Scopes:4"] = "api",
            ["Oidc:Clients:0:Scopes:5"] = "registry",
            ["Oidc:Clients:0:RedirectUris:0"] = WebRedirect,
            ["Oidc:Clients:0:PostLogoutRedirectUris:0"] = WebSignedOut,
            ["Oidc:Clients:0:RefreshTokenInCookie"] = "true",
            ["Oidc:Clients:0:FirstParty"] = "true",
            ["Oidc:Clients:3:ClientId"] = DevClient,
            ["Oidc:Clients:3:GrantTypes:0"] = "authorization_code",
            ["Oidc:Clients:3:GrantTypes:1"] = "refresh_token",
            ["Oidc:Clients:3:Scopes:0"] = "openid",
            ["Oidc:Clients:3:Scopes:1"] = "profile",
            ["Oidc:Clients:3:Scopes:2"] = "email",
            ["Oidc:Clients:3:Scopes:3"] = "offline_access",
            ["Oidc:Clients:3:Scopes:4"] = "api",
            ["Oidc:Clients:3:Scopes:5"] = "registry",
            ["Oidc:Clients:3:RedirectUris:0"] = WebRedirect,
            ["Oidc:Clients:3:FirstParty"] = "true",
            ["Oidc:Clients:4:ClientId"] = ThirdPartyClient,
            ["Oidc:Clients:4:GrantTypes:0"] = "authorization_code",
            ["Oidc:Clients:4:Scopes:0"] = "openid",
            ["Oidc:Clients:4:Scopes:1"] = "api",
            ["Oidc:Clients:4:RedirectUris:0"] = WebRedirect,
            ["Oidc:Clients:1:ClientId"] = ServiceClient,
            ["Oidc:Clients:1:ClientSecret"] = ServiceSecret,
            ["Oidc:Clients:1:GrantTypes:0"] = "client_credentials",
            ["Oidc:Clients:1:Scopes:0"] = "pluginhost",
            ["Oidc:Clients:1:Scopes:1"] = "identity.containment",
            ["Oidc:Clients:1:Scopes:2"] = "identity.privacy",
            ["Oidc:Clients:1:Scopes:3"] = "identity.audit",
            ["Oidc:Clients:2:ClientId"] = ApiResourceClient,
            ["Oidc:Clients:2:ClientSecret"] = ApiResourceSecret,
            ["Oidc:Clients:2:Introspection"] = "true",
            // Generous per-IP throttle: every test client comes from the same address.
            ["LoginThrottle:MaxAttemptsPerWindow"] = "1000",
            ["TokenThrottle:MaxFailuresPerWindow"] = "100000",
            ["RegistrationThrottle:MaxPerWindow"] = "100000",
        };
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }
        foreach (var key in settings.Where(s => s.Value is null).Select(s => s.Key).ToList())
        {
            settings.Remove(key);
        }
        var factory = await ServiceFactory.WithFreshDatabaseAsync<IdentityDataContext>(environment, "identitydb", settings, configureServices, ct);
        factory.ClientOptions.BaseAddress = new Uri("https://localhost");
        factory.ClientOptions.AllowAutoRedirect = false;
        return factory;
    }

    /// <summary>Marks the account's address verified, as the emailed link would.</summary>
    public static async Task ConfirmEmailAsync(this WebApplicationFactory<IdentityDataContext> factory, string email)
    {
        await using var scope = factory.Services.CreateAsyncScope();
        var users = scope.ServiceProvider.GetRequiredService<Microsoft.AspNetCore.Identity.UserManager<ClippyBot.Identity.Accounts.ApplicationUser>>();
        var user = (await users.FindByEmailAsync(email))!;
        user.EmailConfirmed = true;
        await users.UpdateAsync(user);
    }

    /// <summary>A browser-like client: cookies kept, redirects not followed, https.</summary>
    public static HttpClient Browser(this WebApplicationFactory<IdentityDataContext> factory) =>
        factory.CreateClient(new WebApplicationFactoryClientOptions
        {
            BaseAddress = new Uri("https://localhost"),
            AllowAutoRedirect = false,
            HandleCookies = true,
        });
}
