using Microsoft.AspNetCore.Builder;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using ClippyBot.Api.Data;
using ClippyBot.Identity.Data;
using ClippyBot.Tests.Identity;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.Api;

/// <summary>The Api in-process, trusting an in-process Identity: its discovery and JWKS requests go there.</summary>
public static class ApiHost
{
    public static readonly string ApiKeyHashKey = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64);
    public static readonly string EncryptionKey = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64);

    /// <param name="identityOrigin">Identity listens on a real socket there (a browser test): the Api reaches it over the network.</param>
    /// <param name="kestrelPort">The Api listens on a real socket on this port (a browser test).</param>
    public static async Task<ServiceFactory<ApiDbContext>> StartAsync(ServiceFactory<IdentityDataContext> identity, string redis, CancellationToken ct,
        bool waitHealthy = true, Action<IServiceCollection>? configureServices = null, IReadOnlyDictionary<string, string?>? settings = null,
        string? identityOrigin = null, int? kestrelPort = null)
    {
        var all = new Dictionary<string, string?>
        {
            ["ConnectionStrings:cache"] = redis,
            ["Identity:MetadataAddress"] = "https://localhost/.well-known/openid-configuration",
            ["ApiKeys:HashKey"] = ApiKeyHashKey,
            ["Audit:ChainKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
            ["Encryption:KeyEncryptionKey"] = EncryptionKey,
            ["Files:Root"] = Path.Combine(Path.GetTempPath(), "clippybot-files-" + Guid.NewGuid().ToString("N")),
            ["ServiceClient:IdentityAddress"] = "https://localhost",
            ["ServiceClient:ClientSecret"] = IdentityHost.ServiceSecret,
        };
        if (identityOrigin is not null)
        {
            all["Identity:MetadataAddress"] = identityOrigin + "/.well-known/openid-configuration";
            all["ServiceClient:IdentityAddress"] = identityOrigin;
        }
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            all[key] = value;
        }
        var factory = await ServiceFactory.WithFreshDatabaseAsync<ApiDbContext>("apidb", all,
            identityOrigin is null ? Services(identity, configureServices) : services => configureServices?.Invoke(services), ct);
        if (kestrelPort is { } port)
        {
            factory.UseKestrel(port);
            factory.StartServer();
            using var probe = new HttpClient { BaseAddress = new Uri($"http://localhost:{port}") };
            await Poll.UntilAsync(async () => (await probe.GetAsync(new Uri("/health", UriKind.Relative), ct)).IsSuccessStatusCode, TimeSpan.FromSeconds(60), "api healthy", ct);
        }
        else if (waitHealthy)
        {
            await WaitHealthyAsync(factory, ct);
        }
        return factory;
    }

    /// <summary>A second replica of <paramref name="first"/>: same database, same Redis, same settings (but for <paramref name="overrides"/>).</summary>
    public static async Task<ServiceFactory<ApiDbContext>> StartReplicaAsync(ServiceFactory<IdentityDataContext> identity, ServiceFactory<ApiDbContext> first, CancellationToken ct,
        IReadOnlyDictionary<string, string?>? overrides = null)
    {
        var settings = new Dictionary<string, string?>(first.Settings);
        foreach (var (key, value) in overrides ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }
        var replica = new ServiceFactory<ApiDbContext>(settings, Services(identity, null));
        await WaitHealthyAsync(replica, ct);
        return replica;
    }

    private static Action<IServiceCollection> Services(ServiceFactory<IdentityDataContext> identity, Action<IServiceCollection>? more) => services =>
    {
        services.AddHttpClient("identity-metadata").ConfigurePrimaryHttpMessageHandler(() => identity.Server.CreateHandler());
        services.AddHttpClient(ClippyBot.Api.Containment.IdentityServiceClient.HttpClientName).ConfigurePrimaryHttpMessageHandler(() => identity.Server.CreateHandler());
        services.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter, LoopbackPeer>();
        more?.Invoke(services);
    };

    private static async Task WaitHealthyAsync(ServiceFactory<ApiDbContext> factory, CancellationToken ct)
    {
        using var probe = factory.CreateClient();
        await Poll.UntilAsync(async () => (await probe.GetAsync(new Uri("/health", UriKind.Relative), ct)).IsSuccessStatusCode,
            TimeSpan.FromSeconds(60), "api healthy", ct);
    }

    /// <summary>An Api client acting as a freshly registered user (returns the user's email too).</summary>
    public static async Task<(HttpClient Client, string Email, string Subject)> NewUserAsync(
        ServiceFactory<IdentityDataContext> identity, ServiceFactory<ApiDbContext> api, CancellationToken ct, bool verified = true, string? email = null)
    {
        using var browser = identity.Browser();
        email ??= OidcFlows.NewEmail();
        await OidcFlows.RegisterAsync(browser, email, OidcFlows.GoodPassword, ct);
        // A verified address, as after following the emailed link (invitations require it).
        if (verified)
        {
            await identity.ConfirmEmailAsync(email);
        }
        var pkce = OidcFlows.Pkce.Create();
        var code = await OidcFlows.SignInForCodeAsync(browser, email, OidcFlows.GoodPassword, pkce, ct);
        var (_, tokens) = await OidcFlows.RedeemCodeAsync(identity.CreateClient(), code, pkce, ct);
        var access = tokens.GetProperty("access_token").GetString()!;
        var client = api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", access);
        return (client, email, OidcFlows.DecodeJwt(access).Payload.GetProperty("sub").GetString()!);
    }

    public static Task<HttpResponseMessage> SendJsonAsync(this HttpClient client, HttpMethod method, string path, object? body, CancellationToken ct) =>
        client.SendAsync(new HttpRequestMessage(method, path) { Content = body is null ? null : JsonContent.Create(body) }, ct);

    /// <summary>TestServer requests have no peer address; a real socket on this machine would be loopback.</summary>
    private sealed class LoopbackPeer : Microsoft.AspNetCore.Hosting.IStartupFilter
    {
        public Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> Configure(Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> next) => app =>
        {
            app.Use((context, nextMiddleware) =>
            {
                context.Connection.RemoteIpAddress ??= System.Net.IPAddress.Loopback;
                return nextMiddleware(context);
            });
            next(app);
        };
    }

    /// <summary>The user turns on TOTP at Identity and signs in again with a code: an Api client whose token says <c>amr: otp, mfa</c>.</summary>
    public static async Task<HttpClient> WithTwoFactorAsync(ServiceFactory<IdentityDataContext> identity, ServiceFactory<ApiDbContext> api, string email, CancellationToken ct)
    {
        using var browser = identity.Browser();
        using (await OidcFlows.LoginAsync(browser, email, OidcFlows.GoodPassword, ct))
        {
        }
        var (secret, _) = await AccountFlows.EnrolTwoFactorAsync(browser, TimeProvider.System, ct);
        var code = ClippyBot.Identity.Crypto.Totp.Compute(secret, DateTimeOffset.UtcNow.AddSeconds(30));
        var tokens = await AccountFlows.SignInWithSecondFactorForTokensAsync(identity, email, code, ct);
        var client = api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        return client;
    }

    /// <summary>
    /// A new platform administrator (an address listed in <c>Identity:Administrators</c>, verified) signed in with a second
    /// factor: only such a login carries <c>role: platform-admin</c>.
    /// </summary>
    public static async Task<HttpClient> NewAdministratorAsync(ServiceFactory<IdentityDataContext> identity, ServiceFactory<ApiDbContext> api, string email, CancellationToken ct)
    {
        (await NewUserAsync(identity, api, ct, email: email)).Client.Dispose();
        return await WithTwoFactorAsync(identity, api, email, ct);
    }
}

/// <summary>
/// Identity and the Api started together for one test class, with the steps most Api tests share (new users,
/// workspaces, invitations). Each class owns its stack: fresh databases, nothing shared with other classes.
/// </summary>
public sealed class ApiTestbed : IAsyncDisposable
{
    private ApiTestbed(ServiceFactory<IdentityDataContext> identity, ServiceFactory<ApiDbContext> api)
    {
        Identity = identity;
        Api = api;
    }

    public ServiceFactory<IdentityDataContext> Identity { get; }

    public ServiceFactory<ApiDbContext> Api { get; }

    public static async Task<ApiTestbed> StartAsync(CancellationToken ct, Action<IServiceCollection>? apiServices = null,
        IReadOnlyDictionary<string, string?>? apiSettings = null, IDictionary<string, string?>? identitySettings = null, Action<IServiceCollection>? identityServices = null)
    {
        // Each stack counts its own security signals (the test rig's Redis is shared by classes running in parallel).
        var signals = "clippybot:signals:" + Guid.NewGuid().ToString("N") + ":";
        var identityAll = new Dictionary<string, string?>(identitySettings ?? new Dictionary<string, string?>());
        identityAll.TryAdd("Signals:KeyPrefix", signals);
        var apiAll = new Dictionary<string, string?>(apiSettings ?? new Dictionary<string, string?>());
        apiAll.TryAdd("Signals:KeyPrefix", identityAll["Signals:KeyPrefix"]);
        var identity = await IdentityHost.StartAsync(ct, identityAll, identityServices);
        var api = await ApiHost.StartAsync(identity, TestRig.Redis.ConnectionString, ct, configureServices: apiServices, settings: apiAll);
        return new ApiTestbed(identity, api);
    }

    /// <summary>
    /// Identity and the Api with one platform administrator signed in (<see cref="Admin"/>): an address listed in
    /// <c>Identity:Administrators</c>, verified, whose access token therefore carries <c>role: platform-admin</c>.
    /// </summary>
    public static async Task<ApiTestbed> StartWithAdminAsync(CancellationToken ct, IReadOnlyDictionary<string, string?>? apiSettings = null)
    {
        var adminEmail = OidcFlows.NewEmail();
        var testbed = await StartAsync(ct, apiSettings: apiSettings, identitySettings: new Dictionary<string, string?> { ["Identity:Administrators:0"] = adminEmail });
        testbed.Admin = await ApiHost.NewAdministratorAsync(testbed.Identity, testbed.Api, adminEmail, ct);
        return testbed;
    }

    /// <summary>The platform administrator's Api client (only after <see cref="StartWithAdminAsync"/>).</summary>
    public HttpClient Admin { get; private set; } = null!;

    /// <summary>An Api client of <paramref name="email"/>, who signs in again (a new session).</summary>
    public async Task<HttpClient> SignInAgainAsync(string email, CancellationToken ct)
    {
        using var browser = Identity.Browser();
        var pkce = OidcFlows.Pkce.Create();
        var code = await OidcFlows.SignInForCodeAsync(browser, email, OidcFlows.GoodPassword, pkce, ct);
        var (status, tokens) = await OidcFlows.RedeemCodeAsync(Identity.CreateClient(), code, pkce, ct);
        Assert.AreEqual(System.Net.HttpStatusCode.OK, status, tokens.ToString());
        var client = Api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", tokens.GetProperty("access_token").GetString());
        return client;
    }

    public Task<(HttpClient Client, string Email, string Subject)> NewUserAsync(CancellationToken ct, bool verified = true, string? email = null) =>
        ApiHost.NewUserAsync(Identity, Api, ct, verified, email);

    /// <summary>The user turns on TOTP at Identity and signs in again with a code: an Api client whose token says <c>amr: otp, mfa</c>.</summary>
    public Task<HttpClient> WithTwoFactorAsync(string email, CancellationToken ct) => ApiHost.WithTwoFactorAsync(Identity, Api, email, ct);

    public static async Task<Guid> CreateWorkspaceAsync(HttpClient client, string name, CancellationToken ct)
    {
        using var response = await client.SendJsonAsync(HttpMethod.Post, "/api/workspaces", new { name }, ct);
        Assert.AreEqual(System.Net.HttpStatusCode.Created, response.StatusCode, await response.Content.ReadAsStringAsync(ct));
        return (await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(ct)).GetProperty("id").GetGuid();
    }

    /// <summary>Invites <paramref name="email"/>; returns the token from the invitation mail (the Api never returns it to the inviter).</summary>
    public static async Task<string> InviteAsync(HttpClient owner, Guid workspaceId, string email, string role, CancellationToken ct)
    {
        var before = (await TestRig.Smtp.MessagesToAsync(email, ct)).Count(m => m.Subject.StartsWith("Invitation to", StringComparison.Ordinal));
        using var response = await owner.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/invitations", new { email, role }, ct);
        Assert.AreEqual(System.Net.HttpStatusCode.Created, response.StatusCode, await response.Content.ReadAsStringAsync(ct));
        Assert.IsFalse((await response.Content.ReadAsStringAsync(ct)).Contains("token", StringComparison.OrdinalIgnoreCase), "the inviter never sees the token");
        var mail = await TestRig.Smtp.WaitForAsync(email, "Invitation to", ct, count: before + 1);
        return Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(TestSmtp.LinkIn(mail, "/invitations/accept").Query)["token"].ToString();
    }

    /// <summary>A new user invited into the workspace with <paramref name="role"/>, who accepts.</summary>
    public async Task<(HttpClient Client, string Email, string Subject)> JoinAsync(HttpClient owner, Guid workspaceId, string role, CancellationToken ct)
    {
        var user = await NewUserAsync(ct);
        var token = await InviteAsync(owner, workspaceId, user.Email, role, ct);
        using var accept = await user.Client.SendJsonAsync(HttpMethod.Post, "/api/invitations/accept", new { token }, ct);
        Assert.AreEqual(System.Net.HttpStatusCode.OK, accept.StatusCode, await accept.Content.ReadAsStringAsync(ct));
        return user;
    }

    public static async Task<(Guid Id, string Key)> CreateApiKeyAsync(HttpClient owner, Guid workspaceId, string[] scopes, DateTimeOffset? expiresAt, CancellationToken ct)
    {
        using var response = await owner.SendJsonAsync(HttpMethod.Post, $"/api/workspaces/{workspaceId}/api-keys", new { name = "ci", scopes, expiresAt }, ct);
        Assert.AreEqual(System.Net.HttpStatusCode.Created, response.StatusCode, await response.Content.ReadAsStringAsync(ct));
        var body = await response.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>(ct);
        return (body.GetProperty("apiKey").GetProperty("id").GetGuid(), body.GetProperty("key").GetString()!);
    }

    /// <summary>An Api client presenting <paramref name="key"/>.</summary>
    public HttpClient KeyClient(string key)
    {
        var client = Api.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return client;
    }

    public async ValueTask DisposeAsync()
    {
        Admin?.Dispose();
        await Api.DisposeAsync();
        await Identity.DisposeAsync();
    }
}
