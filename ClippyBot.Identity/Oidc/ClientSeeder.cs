using ClippyBot.Contracts;
using ClippyBot.Identity.Data;
using ClippyBot.ServiceDefaults.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Oidc;

/// <summary>Resource servers reachable through scopes, and what each scope grants access to.</summary>
public static class OidcResources
{
    public const string Api = Audiences.Api;
    public const string PluginHost = Audiences.PluginHost;
    public const string ApiScope = ApiScopes.Api;
    public const string PluginHostScope = ApiScopes.PluginHost;

    /// <summary>Identity itself as a resource: its internal containment API (lock accounts, end sessions) for services.</summary>
    public const string Identity = Audiences.Identity;
    public const string ContainmentScope = ApiScopes.IdentityContainment;

    /// <summary>Identity's internal data-subject API (export and erase an account's personal data) for services.</summary>
    public const string PrivacyScope = ApiScopes.IdentityPrivacy;

    /// <summary>Identity's internal audit-anchor API (record and read the Api's audit chain heads) for services.</summary>
    public const string AuditScope = ApiScopes.IdentityAudit;

    public static readonly string[] UserScopes = [Scopes.OpenId, Scopes.Profile, Scopes.Email, Scopes.OfflineAccess, ApiScope];

    /// <summary>The scope → resource map, fixed in code: resolving it needs no database round trip per token.</summary>
    public static readonly IReadOnlyDictionary<string, string> ResourceByScope = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [ApiScope] = Api,
        [ApiScopes.Operations] = Api,
        [ApiScopes.Metrics] = Api,
        [PluginHostScope] = PluginHost,
        [ApiScopes.Registry] = Audiences.Registry,
        [ContainmentScope] = Identity,
        [PrivacyScope] = Identity,
        [AuditScope] = Identity,
    };

    public static List<string> ResourcesFor(IEnumerable<string> scopes) =>
        [.. scopes.Select(s => ResourceByScope.GetValueOrDefault(s)).OfType<string>().Distinct(StringComparer.Ordinal)];
}

/// <summary>
/// Brings the registered clients and scopes in line with configuration at start-up (after migrations). Secrets are
/// stored through <see cref="ClippyApplicationManager{TApplication}"/>, i.e. as keyed hashes only.
/// </summary>
internal sealed partial class ClientSeeder(IServiceScopeFactory scopes, MigrationStatus<IdentityDataContext> migrations,
    IOptions<OidcOptions> options, IHostEnvironment environment, ClientLookupCache cache, ILogger<ClientSeeder> logger) : BackgroundService
{
    private readonly TaskCompletionSource _seeded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Seeded => _seeded.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await migrations.WhenCompleted(stoppingToken);
        await using var scope = scopes.CreateAsyncScope();
        var applications = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
        var scopeManager = scope.ServiceProvider.GetRequiredService<IOpenIddictScopeManager>();

        foreach (var (scopeName, resource) in OidcResources.ResourceByScope)
        {
            await UpsertScopeAsync(scopeManager, scopeName, resource, stoppingToken);
        }

        var configured = options.Value.Clients.Where(c => !c.DevelopmentOnly || environment.IsDevelopment()).ToList();
        // Apps registered at run time are data, not configuration: never "dropped" here.
        var registered = await scope.ServiceProvider.GetRequiredService<IdentityDataContext>().RegisteredApps
            .Select(a => a.ClientId).ToListAsync(stoppingToken);
        var keep = configured.Select(c => c.ClientId).Concat(registered).ToHashSet(StringComparer.Ordinal);
        await DisableDroppedAsync(scope.ServiceProvider, applications, keep, stoppingToken);
        foreach (var client in configured)
        {
            var descriptor = Describe(client);
            // Whatever its state: a configured client an administrator suspended is still there (and stays suspended).
            var existing = await ((ClippyApplicationManager<OpenIddict.EntityFrameworkCore.Models.OpenIddictEntityFrameworkCoreApplication>)applications)
                .FindIncludingDisabledAsync(client.ClientId, stoppingToken);
            if (existing is null)
            {
                await applications.CreateAsync(descriptor, stoppingToken);
            }
            else
            {
                // A suspension by an administrator (a property) outlives restarts.
                foreach (var (name, value) in await applications.GetPropertiesAsync(existing, stoppingToken))
                {
                    descriptor.Properties[name] = value;
                }
                await applications.UpdateAsync(existing, descriptor, stoppingToken);
            }
            LogSeeded(client.ClientId);
        }
        _seeded.TrySetResult();
    }

    /// <summary>
    /// A client no longer configured (or a development-only one outside Development) keeps its row but loses every
    /// permission, and its tokens are revoked: it can neither get new tokens nor refresh old ones.
    /// </summary>
    private async Task DisableDroppedAsync(IServiceProvider services, IOpenIddictApplicationManager applications, HashSet<string> keep, CancellationToken ct)
    {
        var dropped = new List<object>();
        await foreach (var application in applications.ListAsync(cancellationToken: ct))
        {
            if (await applications.GetClientIdAsync(application, ct) is { } clientId && !keep.Contains(clientId)
                && (await applications.GetPermissionsAsync(application, ct)).Length > 0)
            {
                dropped.Add(application);
            }
        }
        var tokens = services.GetRequiredService<IOpenIddictTokenManager>();
        var authorizations = services.GetRequiredService<IOpenIddictAuthorizationManager>();
        foreach (var application in dropped)
        {
            var descriptor = new OpenIddictApplicationDescriptor();
            await applications.PopulateAsync(descriptor, application, ct);
            descriptor.Permissions.Clear();
            descriptor.RedirectUris.Clear();
            descriptor.PostLogoutRedirectUris.Clear();
            await applications.UpdateAsync(application, descriptor, ct);
            var id = await applications.GetIdAsync(application, ct);
            if (id is not null)
            {
                await tokens.RevokeByApplicationIdAsync(id, ct);
                await authorizations.RevokeByApplicationIdAsync(id, ct);
            }
            cache.Remove(ClientCacheKeys.Application(descriptor.ClientId!));
            cache.Remove(ClientCacheKeys.Credentials(descriptor.ClientId!));
            LogDisabled(descriptor.ClientId!);
        }
    }

    /// <summary>
    /// Outside local development a redirect URI is https and not a loopback host — except a public client's loopback
    /// http redirect (a native app, RFC 8252 §7.3). Checked at start-up so a misconfiguration stops the deploy.
    /// </summary>
    public static void ValidateForEnvironment(IEnumerable<OidcClientOptions> clients, IHostEnvironment environment)
    {
        ArgumentNullException.ThrowIfNull(clients);
        if (environment.IsLocal())
        {
            return;
        }
        var problems = new List<string>();
        foreach (var client in clients.Where(c => !c.DevelopmentOnly || environment.IsDevelopment()))
        {
            var native = string.IsNullOrEmpty(client.ClientSecret);
            foreach (var text in client.RedirectUris.Concat(client.PostLogoutRedirectUris))
            {
                if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
                {
                    problems.Add($"{client.ClientId}: '{text}' is not an absolute URI");
                }
                else if (uri.Scheme == Uri.UriSchemeHttps && !uri.IsLoopback && uri.Host != "localhost")
                {
                }
                else if (!(native && uri.Scheme == Uri.UriSchemeHttp && System.Net.IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip)))
                {
                    problems.Add($"{client.ClientId}: '{text}' (outside development a redirect URI is https on a public host; only a public native client may use an http loopback address)");
                }
            }
        }
        if (problems.Count > 0)
        {
            throw new InvalidOperationException("Oidc:Clients has redirect URIs that are not allowed in " + environment.EnvironmentName + ": " + string.Join("; ", problems));
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "OIDC client {ClientId} is no longer configured: disabled and its tokens revoked")]
    private partial void LogDisabled(string clientId);

    private static async Task UpsertScopeAsync(IOpenIddictScopeManager manager, string name, string resource, CancellationToken ct)
    {
        var descriptor = new OpenIddictScopeDescriptor { Name = name, Resources = { resource } };
        var existing = await manager.FindByNameAsync(name, ct);
        if (existing is null)
        {
            await manager.CreateAsync(descriptor, ct);
        }
        else
        {
            await manager.UpdateAsync(existing, descriptor, ct);
        }
    }

    internal static OpenIddictApplicationDescriptor Describe(OidcClientOptions client)
    {
        var confidential = !string.IsNullOrEmpty(client.ClientSecret);
        var descriptor = new OpenIddictApplicationDescriptor
        {
            ClientId = client.ClientId,
            ClientSecret = confidential ? client.ClientSecret : null,
            ClientType = confidential ? ClientTypes.Confidential : ClientTypes.Public,
            DisplayName = string.IsNullOrEmpty(client.DisplayName) ? client.ClientId : client.DisplayName,
            ConsentType = ConsentTypes.Implicit,
        };
        foreach (var uri in client.RedirectUris)
        {
            descriptor.RedirectUris.Add(new Uri(uri, UriKind.Absolute));
        }
        foreach (var uri in client.PostLogoutRedirectUris)
        {
            descriptor.PostLogoutRedirectUris.Add(new Uri(uri, UriKind.Absolute));
        }
        ClientDescriptors.SetPermissions(descriptor, client.GrantTypes, client.Scopes, client.Introspection);
        return descriptor;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "OIDC client {ClientId} is registered")]
    private partial void LogSeeded(string clientId);
}

/// <summary>Readiness waits until the configured clients exist, so no request meets an unknown client after a deploy.</summary>
internal sealed class ClientsSeededHealthCheck(ClientSeeder seeder) : Microsoft.Extensions.Diagnostics.HealthChecks.IHealthCheck
{
    public Task<Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult> CheckHealthAsync(
        Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(seeder.Seeded.IsCompletedSuccessfully
            ? Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Healthy()
            : Microsoft.Extensions.Diagnostics.HealthChecks.HealthCheckResult.Unhealthy("Clients are not registered yet."));
}
