using ClippyBot.Identity.Data;
using ClippyBot.PluginHost.Data;
using ClippyBot.Tests.Rig;
using Microsoft.Extensions.DependencyInjection;

namespace ClippyBot.Tests.PluginHost;

public static class PluginHostRig
{
    /// <summary>
    /// The PluginHost on a fresh database, trusting the tests' first-party publisher key and validating service tokens
    /// against the in-process <paramref name="identity"/>.
    /// </summary>
    public static Task<ServiceFactory<PluginsDbContext>> StartAsync(ServiceFactory<IdentityDataContext> identity, CancellationToken ct,
        Action<IServiceCollection>? configureServices = null) =>
        ServiceFactory.WithFreshDatabaseAsync<PluginsDbContext>("pluginsdb", new Dictionary<string, string?>
        {
            ["Encryption:KeyEncryptionKey"] = System.Security.Cryptography.RandomNumberGenerator.GetHexString(64),
            ["Plugins:TrustedKeys:0:Name"] = "first-party",
            ["Plugins:TrustedKeys:0:PublicKey"] = Convert.ToBase64String(PluginCatalogTests.Publisher.Public),
            ["Plugins:TrustedKeys:0:Plugins:0"] = "*",
            ["Identity:MetadataAddress"] = "https://localhost/.well-known/openid-configuration",
        }, services =>
        {
            services.AddHttpClient(ClippyBot.ServiceDefaults.Authentication.IdentityAccessTokens.MetadataClient)
                .ConfigurePrimaryHttpMessageHandler(() => identity.Server.CreateHandler());
            configureServices?.Invoke(services);
        }, ct);
}
