using ClippyBot.Identity.Crypto;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.Core;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// OpenIddict's application manager with two changes that decide token throughput:
/// <list type="bullet">
/// <item>Client secrets are random 256-bit values: stored as an HMAC under a server key and compared in constant
/// time, instead of PBKDF2 (which adds nothing for random secrets and costs milliseconds per request).</item>
/// <item>Lookups by client id are served from a process-wide cache for <see cref="ClientCacheKeys.Lifetime"/> (OpenIddict's own
/// entity cache lives only as long as one request), evicted at once on local changes; other replicas see a change
/// through <see cref="Apps.ClientChanges"/> at once (or within that lifetime if the announcement is lost). Unknown client ids are cached as unknown too, so "no such client" costs what "wrong secret"
/// costs and the response time does not tell which client ids exist.</item>
/// </list>
/// </summary>
public sealed class ClippyApplicationManager<TApplication>(
    IOpenIddictApplicationCache<TApplication> cache,
    ILogger<OpenIddictApplicationManager<TApplication>> logger,
    IOptionsMonitor<OpenIddictCoreOptions> options,
    IOpenIddictApplicationStore<TApplication> store,
    SecretHasher hasher,
    ClientLookupCache applications,
    Apps.ClientChanges changes,
    TimeProvider time) : OpenIddictApplicationManager<TApplication>(cache, logger, options, store)
    where TApplication : class
{
    private static readonly object Unknown = new();

    // Taken when the manager is made (one per request): OpenIddict's own per-request entity cache may hand back an entity
    // read before an eviction, so only a generation taken before any of this request's reads proves a stored value fresh.
    private readonly long _generation = applications.Generation;

    /// <summary>
    /// A suspended or deleted app (<see cref="Apps.AppProperties.Disabled"/>) is not found: every endpoint then answers as
    /// for an unknown client — no token, no refresh, no introspection — on every replica as soon as the change is announced.
    /// </summary>
    public override async ValueTask<TApplication?> FindByClientIdAsync(string identifier, CancellationToken cancellationToken = default)
    {
        // No client id is longer; a longer one is never looked up or remembered.
        if (identifier is null || identifier.Length > ParameterBounds.ClientId)
        {
            return null;
        }
        // While changes may go unheard (connection lost), the cache is not trusted: read the database.
        var trusted = changes.Listening;
        if (!trusted)
        {
            _ = changes.ListenAsync();
        }
        else if (applications.TryGetValue(ClientCacheKeys.Application(identifier), out object? cached))
        {
            return cached as TApplication;
        }
        var application = await base.FindByClientIdAsync(identifier, cancellationToken);
        if (application is not null && await IsDisabledAsync(application, cancellationToken))
        {
            application = null;
        }
        if (trusted)
        {
            applications.SetIfUnchanged(ClientCacheKeys.Application(identifier), (object?)application ?? Unknown, _generation);
        }
        return application;
    }

    private async ValueTask<bool> IsDisabledAsync(TApplication application, CancellationToken ct) =>
        (await GetPropertiesAsync(application, ct)).ContainsKey(Apps.AppProperties.Disabled);

    /// <summary>A suspended or deleted app is no redirect target either (a post-logout redirect without client_id looks it up this way).</summary>
    public override async IAsyncEnumerable<TApplication> FindByPostLogoutRedirectUriAsync(string uri,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var application in base.FindByPostLogoutRedirectUriAsync(uri, cancellationToken))
        {
            if (!await IsDisabledAsync(application, cancellationToken))
            {
                yield return application;
            }
        }
    }

    public override async IAsyncEnumerable<TApplication> FindByRedirectUriAsync(string uri,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await foreach (var application in base.FindByRedirectUriAsync(uri, cancellationToken))
        {
            if (!await IsDisabledAsync(application, cancellationToken))
            {
                yield return application;
            }
        }
    }

    /// <summary>The registration whatever its state (for its owner's and administrators' pages): never cached.</summary>
    public ValueTask<TApplication?> FindIncludingDisabledAsync(string identifier, CancellationToken cancellationToken = default) =>
        identifier is null || identifier.Length > ParameterBounds.ClientId ? ValueTask.FromResult<TApplication?>(null) : base.FindByClientIdAsync(identifier, cancellationToken);

    /// <summary>
    /// The current secret, or during its grace period (<see cref="Apps.AppProperties.PreviousSecret"/>) the one it replaced.
    /// Both MACs are computed every time, so which one matched (or none) does not show in the timing.
    /// </summary>
    public override async ValueTask<bool> ValidateClientSecretAsync(TApplication application, string secret, CancellationToken cancellationToken = default)
    {
        var current = await base.ValidateClientSecretAsync(application, secret, cancellationToken);
        var previous = Apps.AppProperties.PreviousSecretIn(await GetPropertiesAsync(application, cancellationToken), time.GetUtcNow());
        var matchesPrevious = hasher.Verify(secret ?? "", previous);
        return current || (previous is not null && matchesPrevious);
    }

    public override async ValueTask UpdateAsync(TApplication application, CancellationToken cancellationToken = default)
    {
        await base.UpdateAsync(application, cancellationToken);
        await EvictAsync(application, cancellationToken);
    }

    public override async ValueTask DeleteAsync(TApplication application, CancellationToken cancellationToken = default)
    {
        // Announced after the row is gone: a read between an earlier announcement and the delete would cache it again.
        var clientId = await GetClientIdAsync(application, cancellationToken);
        await base.DeleteAsync(application, cancellationToken);
        if (clientId is not null)
        {
            await changes.AnnounceAsync(clientId);
        }
    }

    protected override ValueTask<string> ObfuscateClientSecretAsync(string secret, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(hasher.Hash(secret));

    protected override ValueTask<bool> ValidateClientSecretAsync(string secret, string comparand, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(hasher.Verify(secret, comparand));

    // Every creation path ends in one of these two; a cached "unknown" for the new client id must go.
    public override async ValueTask CreateAsync(TApplication application, CancellationToken cancellationToken = default)
    {
        await base.CreateAsync(application, cancellationToken);
        await EvictAsync(application, cancellationToken);
    }

    public override async ValueTask CreateAsync(TApplication application, string? secret, CancellationToken cancellationToken = default)
    {
        await base.CreateAsync(application, secret, cancellationToken);
        await EvictAsync(application, cancellationToken);
    }

    /// <summary>Here and on every other replica (<see cref="Apps.ClientChanges"/>).</summary>
    private async ValueTask EvictAsync(TApplication application, CancellationToken ct)
    {
        if (await GetClientIdAsync(application, ct) is { } clientId)
        {
            await changes.AnnounceAsync(clientId);
        }
    }
}
