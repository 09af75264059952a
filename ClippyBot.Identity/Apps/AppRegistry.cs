using System.Text.Json;
using ClippyBot.Identity.AccountSecurity;
using ClippyBot.Identity.Crypto;
using ClippyBot.Identity.Data;
using ClippyBot.Identity.Oidc;
using ClippyBot.Security;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Apps;

/// <summary>One app as its developer and administrators see it.</summary>
public sealed record AppView(
    string ClientId, string Name, Guid? OwnerId, bool Confidential, bool Native, bool FirstParty, bool Configured, string AuthMethod,
    IReadOnlyList<string> GrantTypes, IReadOnlyList<string> RedirectUris, IReadOnlyList<string> PostLogoutRedirectUris,
    IReadOnlyList<string> Scopes, TimeSpan? AccessTokenLifetime, TimeSpan? RefreshTokenLifetime, DateTimeOffset? CreatedAt,
    string? Disabled, string? SuspendReason, DateTimeOffset? PreviousSecretExpires)
{
    /// <summary>The app as RFC 7591 metadata (what <c>/connect/register</c> returns and a developer's form starts from).</summary>
    public AppRegistration AsRegistration() => new()
    {
        ClientName = Name,
        ApplicationType = Native ? "native" : "web",
        TokenEndpointAuthMethod = AuthMethod,
        GrantTypes = [.. GrantTypes],
        RedirectUris = [.. RedirectUris],
        PostLogoutRedirectUris = [.. PostLogoutRedirectUris],
        Scope = string.Join(' ', Scopes),
        AccessTokenLifetime = AccessTokenLifetime is { } a ? (int)a.TotalSeconds : null,
        RefreshTokenLifetime = RefreshTokenLifetime is { } r ? (int)r.TotalSeconds : null,
    };
}

/// <summary>A new app: its secret and registration access token are shown this once and stored only as hashes.</summary>
public sealed record AppCreated(AppView App, string? ClientSecret, string? RegistrationAccessToken);

/// <summary>
/// Apps registered at run time (docs/apps.md): created, changed, rotated, deleted by their developer (pages or RFC
/// 7591/7592), suspended and marked first-party by platform administrators. Every change takes effect on every replica at
/// once (<see cref="ClientChanges"/>); suspending or deleting ends every session and token of the app at once (revocation
/// markers); every change and refusal is recorded in <see cref="AppAuditEntry"/> and, for the person who acted, their
/// security log.
/// </summary>
public sealed class AppRegistry(
    IdentityDataContext db,
    IOpenIddictApplicationManager manager,
    IOpenIddictTokenManager tokens,
    IOpenIddictAuthorizationManager authorizations,
    Sessions.SessionStore sessions,
    RevocationMarkers markers,
    SecurityLog securityLog,
    IOptions<AppsOptions> options,
    IOptions<OidcOptions> oidc,
    TimeProvider time,
    IHttpContextAccessor http)
{
    private const string AuthMethodProperty = "clippybot_auth_method";

    private ClippyApplicationManager<OpenIddictEntityFrameworkCoreApplication> Manager =>
        (ClippyApplicationManager<OpenIddictEntityFrameworkCoreApplication>)manager;

    public async Task<(AppCreated? Created, Dictionary<string, string> Errors)> CreateAsync(Guid ownerId, AppRegistration request, bool withRegistrationToken, CancellationToken ct)
    {
        var (valid, errors) = AppRules.Validate(request, (oidc.Value.AccessTokenLifetime, oidc.Value.RefreshTokenLifetime));
        if (valid is null)
        {
            await AuditAsync(ownerId, "-", "app.create", "refused", string.Join(", ", errors.Keys), ct);
            return (null, errors);
        }
        var dayAgo = time.GetUtcNow().AddDays(-1);
        // Deleted apps count towards a day's registrations: creating and deleting in a loop ends here too.
        if (await db.RegisteredApps.CountAsync(a => a.OwnerId == ownerId && a.DeletedAt == null, ct) >= options.Value.MaxAppsPerOwner
            || await db.RegisteredApps.CountAsync(a => a.OwnerId == ownerId && a.CreatedAt > dayAgo, ct) >= options.Value.MaxAppsPerOwner)
        {
            errors["client_name"] = $"You have {options.Value.MaxAppsPerOwner} apps (or registered that many today), the most one developer may: delete one, or wait a day.";
            await AuditAsync(ownerId, "-", "app.create", "refused", "limit", ct);
            return (null, errors);
        }
        var clientId = "app_" + RandomTokens.New(16);
        var secret = valid.Confidential ? SecretHasher.NewSecret() : null;
        var registrationToken = withRegistrationToken ? RandomTokens.New() : null;
        var descriptor = new OpenIddictApplicationDescriptor { ClientId = clientId, ClientSecret = secret };
        Apply(descriptor, valid);
        var now = time.GetUtcNow();
        await db.Database.CreateExecutionStrategy().ExecuteAsync(async () =>
        {
            await using var transaction = await db.Database.BeginTransactionAsync(ct);
            db.RegisteredApps.Add(new RegisteredApp
            {
                ClientId = clientId, OwnerId = ownerId, CreatedAt = now, UpdatedAt = now,
                RegistrationTokenHash = registrationToken is null ? null : RandomTokens.LookupHash(registrationToken),
            });
            await db.SaveChangesAsync(ct);
            await manager.CreateAsync(descriptor, ct);
            await transaction.CommitAsync(ct);
        });
        await AuditAsync(ownerId, clientId, "app.created", "success", valid.Confidential ? "confidential" : "public", ct);
        return (new AppCreated((await ViewAsync(clientId, ct))!, secret, registrationToken), errors);
    }

    /// <summary>Changes an app's metadata; its type (public or confidential) and secret stay. Null when done.</summary>
    public async Task<Dictionary<string, string>?> UpdateAsync(Guid? actorId, string clientId, AppRegistration request, CancellationToken ct)
    {
        var (valid, errors) = AppRules.Validate(request, (oidc.Value.AccessTokenLifetime, oidc.Value.RefreshTokenLifetime));
        var application = await Manager.FindIncludingDisabledAsync(clientId, ct);
        if (application is null)
        {
            return new() { ["client_id"] = "No such app." };
        }
        if (valid is not null && valid.Confidential != await manager.HasClientTypeAsync(application, ClientTypes.Confidential, ct))
        {
            errors["token_endpoint_auth_method"] = "An app stays public or confidential: register a new app to change it.";
        }
        if (valid is null || errors.Count > 0)
        {
            await AuditAsync(actorId, clientId, "app.update", "refused", string.Join(", ", errors.Keys), ct);
            return errors;
        }
        var descriptor = new OpenIddictApplicationDescriptor();
        await manager.PopulateAsync(descriptor, application, ct);
        var before = descriptor.RedirectUris.Select(u => u.ToString()).ToHashSet(StringComparer.Ordinal);
        var added = valid.RedirectUris.Select(u => u.ToString()).Where(u => !before.Contains(u)).ToList();
        // A new place to send codes to is a new question for the people who allowed the app: whoever changed it (a
        // taken-over developer account?) must not receive their codes silently. Consents go before the new URI is live,
        // and a first-party mark (no consent page at all) goes too, until an administrator gives it again.
        var reasked = 0;
        if (added.Count > 0)
        {
            reasked = await db.AppConsents.Where(c => c.ClientId == clientId).ExecuteDeleteAsync(ct);
            await db.RegisteredApps.Where(a => a.ClientId == clientId).ExecuteUpdateAsync(a => a.SetProperty(x => x.FirstParty, false), ct);
        }
        Apply(descriptor, valid);
        await manager.UpdateAsync(application, descriptor, ct);
        await db.RegisteredApps.Where(a => a.ClientId == clientId).ExecuteUpdateAsync(a => a.SetProperty(x => x.UpdatedAt, time.GetUtcNow()), ct);
        await AuditAsync(actorId, clientId, "app.updated", "success",
            added.Count > 0 ? $"new redirect URI(s) {string.Join(' ', added)}; {reasked} person(s) will be asked again; not first-party until an administrator says so" : "", ct);
        return null;
    }

    /// <summary>A new secret (returned once); the previous one keeps working for <see cref="AppsOptions.SecretRotationGrace"/>.</summary>
    public async Task<string?> RotateSecretAsync(Guid? actorId, string clientId, CancellationToken ct)
    {
        var application = await Manager.FindIncludingDisabledAsync(clientId, ct);
        if (application is null || !await manager.HasClientTypeAsync(application, ClientTypes.Confidential, ct))
        {
            await AuditAsync(actorId, clientId, "app.secret-rotate", "refused", "not a confidential app", ct);
            return null;
        }
        var descriptor = new OpenIddictApplicationDescriptor();
        await manager.PopulateAsync(descriptor, application, ct);
        // The stored keyed hash of the current secret becomes the previous one, for the grace period.
        descriptor.Properties[AppProperties.PreviousSecret] = JsonSerializer.SerializeToElement(descriptor.ClientSecret);
        descriptor.Properties[AppProperties.PreviousSecretExpires] = JsonSerializer.SerializeToElement((time.GetUtcNow() + options.Value.SecretRotationGrace).ToUnixTimeSeconds());
        var secret = SecretHasher.NewSecret();
        descriptor.ClientSecret = secret;
        await manager.UpdateAsync(application, descriptor, ct);
        await AuditAsync(actorId, clientId, "app.secret-rotated", "success", $"previous secret valid for {options.Value.SecretRotationGrace}", ct);
        return secret;
    }

    /// <summary>Ends the previous secret's grace period now (it leaked, say); false when there is none.</summary>
    public async Task<bool> EndPreviousSecretAsync(Guid? actorId, string clientId, CancellationToken ct)
    {
        var application = await Manager.FindIncludingDisabledAsync(clientId, ct);
        if (application is null || !(await manager.GetPropertiesAsync(application, ct)).ContainsKey(AppProperties.PreviousSecret))
        {
            await AuditAsync(actorId, clientId, "app.previous-secret-end", "refused", "no previous secret", ct);
            return false;
        }
        var descriptor = new OpenIddictApplicationDescriptor();
        await manager.PopulateAsync(descriptor, application, ct);
        descriptor.Properties.Remove(AppProperties.PreviousSecret);
        descriptor.Properties.Remove(AppProperties.PreviousSecretExpires);
        await manager.UpdateAsync(application, descriptor, ct);
        await AuditAsync(actorId, clientId, "app.previous-secret-ended", "success", "", ct);
        return true;
    }

    /// <summary>Refusals older than <see cref="AppsOptions.RefusalRetention"/> go (changes stay: they are each app's history).</summary>
    public async Task<int> RemoveOldRefusalsAsync(CancellationToken ct)
    {
        var before = time.GetUtcNow() - options.Value.RefusalRetention;
        // In batches (an index on outcome and time finds them): after a flood, one statement would be one huge delete.
        var removed = 0;
        while (true)
        {
            var batch = await db.AppAuditEntries.Where(e => e.Outcome == "refused" && e.At < before).OrderBy(e => e.At).Take(5_000).Select(e => e.Id).ToListAsync(ct);
            if (batch.Count == 0)
            {
                return removed;
            }
            removed += await db.AppAuditEntries.Where(e => batch.Contains(e.Id)).ExecuteDeleteAsync(ct);
        }
    }

    /// <summary>Removes previous secrets whose grace period has ended (the worker runs this; expiry alone already refuses them).</summary>
    public async Task<int> RemoveExpiredSecretsAsync(CancellationToken ct)
    {
        var removed = 0;
        var now = time.GetUtcNow();
        foreach (var clientId in await db.RegisteredApps.Where(a => a.DeletedAt == null).Select(a => a.ClientId).ToListAsync(ct))
        {
            if (await Manager.FindIncludingDisabledAsync(clientId, ct) is not { } application)
            {
                continue;
            }
            var properties = await manager.GetPropertiesAsync(application, ct);
            if (properties.ContainsKey(AppProperties.PreviousSecret) && AppProperties.PreviousSecretIn(properties, now) is null)
            {
                var descriptor = new OpenIddictApplicationDescriptor();
                await manager.PopulateAsync(descriptor, application, ct);
                descriptor.Properties.Remove(AppProperties.PreviousSecret);
                descriptor.Properties.Remove(AppProperties.PreviousSecretExpires);
                await manager.UpdateAsync(application, descriptor, ct);
                removed++;
            }
        }
        return removed;
    }

    /// <summary>Disabled at once and for ever: every token refused, every session ended, consents gone.</summary>
    public async Task<bool> DeleteAsync(Guid? actorId, string clientId, CancellationToken ct)
    {
        if (!await DisableAsync(clientId, "deleted", forever: true, ct))
        {
            await AuditAsync(actorId, clientId, "app.delete", "refused", "no such app", ct);
            return false;
        }
        await db.RegisteredApps.Where(a => a.ClientId == clientId).ExecuteUpdateAsync(a => a.SetProperty(x => x.DeletedAt, time.GetUtcNow()), ct);
        await db.AppConsents.Where(c => c.ClientId == clientId).ExecuteDeleteAsync(ct);
        await AuditAsync(actorId, clientId, "app.deleted", "success", "", ct);
        return true;
    }

    /// <summary>Every app of a person (their account is erased): deleted as if they had done it.</summary>
    public async Task DeleteAllOwnedAsync(Guid ownerId, CancellationToken ct)
    {
        foreach (var clientId in await db.RegisteredApps.Where(a => a.OwnerId == ownerId && a.DeletedAt == null).Select(a => a.ClientId).ToListAsync(ct))
        {
            await DeleteAsync(null, clientId, ct);
        }
    }

    /// <summary>A platform administrator stops an app at once (any app, configured ones too); the reason is shown to its developer.</summary>
    public async Task<bool> SuspendAsync(Guid administratorId, string clientId, string reason, CancellationToken ct)
    {
        if (!await DisableAsync(clientId, "suspended", forever: false, ct))
        {
            await AuditAsync(administratorId, clientId, "app.suspend", "refused", "no such active app", ct);
            return false;
        }
        var now = time.GetUtcNow();
        await db.RegisteredApps.Where(a => a.ClientId == clientId)
            .ExecuteUpdateAsync(a => a.SetProperty(x => x.SuspendedAt, now).SetProperty(x => x.SuspendReason, reason), ct);
        await AuditAsync(administratorId, clientId, "app.suspended", "success", reason, ct);
        return true;
    }

    public async Task<bool> ResumeAsync(Guid administratorId, string clientId, CancellationToken ct)
    {
        var application = await Manager.FindIncludingDisabledAsync(clientId, ct);
        if (application is null || AppProperties.DisabledIn(await manager.GetPropertiesAsync(application, ct)) != "suspended")
        {
            await AuditAsync(administratorId, clientId, "app.resume", "refused", "not suspended", ct);
            return false;
        }
        var descriptor = new OpenIddictApplicationDescriptor();
        await manager.PopulateAsync(descriptor, application, ct);
        descriptor.Properties.Remove(AppProperties.Disabled);
        await manager.UpdateAsync(application, descriptor, ct);
        await db.RegisteredApps.Where(a => a.ClientId == clientId)
            .ExecuteUpdateAsync(a => a.SetProperty(x => x.SuspendedAt, (DateTimeOffset?)null).SetProperty(x => x.SuspendReason, (string?)null), ct);
        await AuditAsync(administratorId, clientId, "app.resumed", "success", "", ct);
        return true;
    }

    /// <summary>First-party apps skip the consent page and accept unverified addresses; only registered apps are marked here.</summary>
    public async Task<bool> SetFirstPartyAsync(Guid administratorId, string clientId, bool firstParty, CancellationToken ct)
    {
        var changed = await db.RegisteredApps.Where(a => a.ClientId == clientId && a.DeletedAt == null)
            .ExecuteUpdateAsync(a => a.SetProperty(x => x.FirstParty, firstParty), ct);
        if (changed == 0)
        {
            await AuditAsync(administratorId, clientId, "app.first-party", "refused", "not a registered app", ct);
            return false;
        }
        await AuditAsync(administratorId, clientId, firstParty ? "app.first-party" : "app.third-party", "success", "", ct);
        return true;
    }

    public async Task<bool> IsFirstPartyAsync(string? clientId, CancellationToken ct) =>
        clientId is not null
        && (oidc.Value.Clients.Any(c => c.ClientId == clientId && c.FirstParty)
            || await db.RegisteredApps.AnyAsync(a => a.ClientId == clientId && a.FirstParty && a.DeletedAt == null, ct));

    /// <summary>The person's own app, or null (someone else's app is simply not found).</summary>
    public Task<RegisteredApp?> FindOwnedAsync(Guid ownerId, string clientId, CancellationToken ct) =>
        db.RegisteredApps.AsNoTracking().SingleOrDefaultAsync(a => a.ClientId == clientId && a.OwnerId == ownerId && a.DeletedAt == null, ct);

    /// <summary>The app RFC 7592's registration access token names, or null.</summary>
    public Task<RegisteredApp?> FindByRegistrationTokenAsync(string clientId, string token, CancellationToken ct)
    {
        var hash = RandomTokens.LookupHash(token);
        return db.RegisteredApps.AsNoTracking().SingleOrDefaultAsync(a => a.ClientId == clientId && a.RegistrationTokenHash == hash && a.DeletedAt == null, ct);
    }

    public async Task<List<AppView>> ListOwnedAsync(Guid ownerId, CancellationToken ct)
    {
        var views = new List<AppView>();
        foreach (var clientId in await db.RegisteredApps.Where(a => a.OwnerId == ownerId && a.DeletedAt == null).OrderBy(a => a.CreatedAt).Select(a => a.ClientId).ToListAsync(ct))
        {
            if (await ViewAsync(clientId, ct) is { } view)
            {
                views.Add(view);
            }
        }
        return views;
    }

    /// <summary>Every client, configured and registered (deleted ones left out), for platform administrators.</summary>
    public async Task<List<AppView>> ListAllAsync(CancellationToken ct)
    {
        var rows = await db.RegisteredApps.AsNoTracking().ToDictionaryAsync(a => a.ClientId, StringComparer.Ordinal, ct);
        var views = new List<AppView>();
        await foreach (var application in manager.ListAsync(cancellationToken: ct))
        {
            var view = await ViewAsync(application, rows, ct);
            if (view.Disabled != "deleted")
            {
                views.Add(view);
            }
        }
        return [.. views.OrderBy(v => v.Name, StringComparer.OrdinalIgnoreCase)];
    }

    public async Task<AppView?> ViewAsync(string clientId, CancellationToken ct)
    {
        var application = await Manager.FindIncludingDisabledAsync(clientId, ct);
        if (application is null)
        {
            return null;
        }
        var rows = await db.RegisteredApps.AsNoTracking().Where(a => a.ClientId == clientId).ToDictionaryAsync(a => a.ClientId, StringComparer.Ordinal, ct);
        return await ViewAsync(application, rows, ct);
    }

    private async Task<AppView> ViewAsync(object application, Dictionary<string, RegisteredApp> rows, CancellationToken ct)
    {
        var clientId = (await manager.GetClientIdAsync(application, ct))!;
        var row = rows.GetValueOrDefault(clientId);
        var permissions = await manager.GetPermissionsAsync(application, ct);
        var settings = await manager.GetSettingsAsync(application, ct);
        var properties = await manager.GetPropertiesAsync(application, ct);
        var confidential = await manager.HasClientTypeAsync(application, ClientTypes.Confidential, ct);
        static TimeSpan? Lifetime(System.Collections.Immutable.ImmutableDictionary<string, string> settings, string key) =>
            settings.TryGetValue(key, out var text) && TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : null;
        DateTimeOffset? previousExpires = AppProperties.PreviousSecretIn(properties, time.GetUtcNow()) is not null
            ? DateTimeOffset.FromUnixTimeSeconds(properties[AppProperties.PreviousSecretExpires].GetInt64())
            : null;
        var configured = oidc.Value.Clients.FirstOrDefault(c => c.ClientId == clientId);
        return new AppView(
            clientId,
            await manager.GetDisplayNameAsync(application, ct) ?? clientId,
            row?.OwnerId,
            confidential,
            await manager.HasApplicationTypeAsync(application, ApplicationTypes.Native, ct),
            row?.FirstParty ?? configured?.FirstParty ?? false,
            row is null,
            properties.TryGetValue(AuthMethodProperty, out var method) && method.ValueKind == JsonValueKind.String ? method.GetString()! : confidential ? AppRules.AuthBasic : AppRules.AuthNone,
            [.. permissions.Where(p => p.StartsWith(Permissions.Prefixes.GrantType, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.GrantType.Length..])],
            [.. (await manager.GetRedirectUrisAsync(application, ct)).Select(u => u.ToString())],
            [.. (await manager.GetPostLogoutRedirectUrisAsync(application, ct)).Select(u => u.ToString())],
            [.. permissions.Where(p => p.StartsWith(Permissions.Prefixes.Scope, StringComparison.Ordinal)).Select(p => p[Permissions.Prefixes.Scope.Length..])],
            Lifetime(settings, Settings.TokenLifetimes.AccessToken),
            Lifetime(settings, Settings.TokenLifetimes.RefreshToken),
            row?.CreatedAt,
            AppProperties.DisabledIn(properties),
            row?.SuspendReason,
            previousExpires);
    }

    /// <summary>The registration's fields onto OpenIddict's descriptor (id, secret and ClippyBot's own properties stay).</summary>
    private static void Apply(OpenIddictApplicationDescriptor descriptor, ValidAppRegistration valid)
    {
        descriptor.DisplayName = valid.Name;
        descriptor.ClientType = valid.Confidential ? ClientTypes.Confidential : ClientTypes.Public;
        descriptor.ApplicationType = valid.Native ? ApplicationTypes.Native : ApplicationTypes.Web;
        // ClippyBot asks for consent itself (the authorization endpoint), for every app not marked first-party.
        descriptor.ConsentType = ConsentTypes.Explicit;
        descriptor.RedirectUris.Clear();
        foreach (var uri in valid.RedirectUris)
        {
            descriptor.RedirectUris.Add(uri);
        }
        descriptor.PostLogoutRedirectUris.Clear();
        foreach (var uri in valid.PostLogoutRedirectUris)
        {
            descriptor.PostLogoutRedirectUris.Add(uri);
        }
        // Confidential apps may introspect and revoke the tokens they were issued, as configured resource clients do.
        ClientDescriptors.SetPermissions(descriptor, valid.GrantTypes, valid.Scopes, introspection: valid.Confidential);
        SetLifetime(descriptor, Settings.TokenLifetimes.AccessToken, valid.AccessTokenLifetime);
        SetLifetime(descriptor, Settings.TokenLifetimes.RefreshToken, valid.RefreshTokenLifetime);
        descriptor.Properties[AuthMethodProperty] = JsonSerializer.SerializeToElement(valid.AuthMethod);
    }

    private static void SetLifetime(OpenIddictApplicationDescriptor descriptor, string key, TimeSpan? lifetime)
    {
        if (lifetime is { } value)
        {
            descriptor.Settings[key] = value.ToString("c", System.Globalization.CultureInfo.InvariantCulture);
        }
        else
        {
            descriptor.Settings.Remove(key);
        }
    }

    /// <summary>
    /// The client is not found at any endpoint from now on (every replica: the update is announced); its refresh tokens
    /// and authorizations are revoked, every session with it ends, and resource servers refuse its outstanding access
    /// tokens (one marker per session, and the client's own marker for client-credentials tokens, whose subject it is).
    /// </summary>
    private async Task<bool> DisableAsync(string clientId, string state, bool forever, CancellationToken ct)
    {
        var application = await Manager.FindIncludingDisabledAsync(clientId, ct);
        if (application is null || AppProperties.DisabledIn(await manager.GetPropertiesAsync(application, ct)) == "deleted")
        {
            return false;
        }
        var descriptor = new OpenIddictApplicationDescriptor();
        await manager.PopulateAsync(descriptor, application, ct);
        descriptor.Properties[AppProperties.Disabled] = JsonSerializer.SerializeToElement(state);
        if (forever)
        {
            descriptor.Permissions.Clear();
            descriptor.RedirectUris.Clear();
            descriptor.PostLogoutRedirectUris.Clear();
        }
        await manager.UpdateAsync(application, descriptor, ct);
        if (await manager.GetIdAsync(application, ct) is { } id)
        {
            await tokens.RevokeByApplicationIdAsync(id, ct);
            await authorizations.RevokeByApplicationIdAsync(id, ct);
        }
        var ended = await sessions.EndAllForClientAsync(clientId, ct);
        await markers.PublishAllAsync(clientId, ended);
        return true;
    }

    /// <summary>A person allowed or denied an app (recorded for the app's history and their security log).</summary>
    public Task RecordConsentAsync(Guid userId, string clientId, string action, string scopes, CancellationToken ct) =>
        AuditAsync(userId, clientId, action, "success", scopes, ct);

    /// <summary>The third-party apps a person has allowed, with when each was last used (its newest session activity).</summary>
    public async Task<List<(AppConsent Consent, string Name, DateTimeOffset? LastUsed)>> ConnectedAsync(Guid userId, CancellationToken ct)
    {
        var consents = await db.AppConsents.AsNoTracking().Where(c => c.UserId == userId).OrderBy(c => c.GrantedAt).ToListAsync(ct);
        var clientIds = consents.Select(c => c.ClientId).ToList();
        var lastUsed = await db.UserSessions.Where(s => s.UserId == userId && clientIds.Contains(s.ClientId))
            .GroupBy(s => s.ClientId).Select(g => new { ClientId = g.Key, Last = g.Max(s => s.LastSeenAt) }).ToDictionaryAsync(x => x.ClientId, x => x.Last, ct);
        var connected = new List<(AppConsent, string, DateTimeOffset?)>();
        foreach (var consent in consents)
        {
            var application = await Manager.FindIncludingDisabledAsync(consent.ClientId, ct);
            var name = application is null ? consent.ClientId : await manager.GetDisplayNameAsync(application, ct) ?? consent.ClientId;
            connected.Add((consent, name, lastUsed.TryGetValue(consent.ClientId, out var at) ? at : null));
        }
        return connected;
    }

    /// <summary>
    /// The person takes an app's access away: the consent goes (the app asks again next time), and every session of
    /// theirs with it ends with its refresh and access tokens (one revocation marker per session) — at once.
    /// </summary>
    public async Task<bool> DisconnectAsync(Guid userId, string clientId, CancellationToken ct)
    {
        var removed = await db.AppConsents.Where(c => c.UserId == userId && c.ClientId == clientId).ExecuteDeleteAsync(ct);
        var ended = await sessions.EndForClientAsync(userId, clientId, ct);
        if (removed == 0 && ended.Count == 0)
        {
            await AuditAsync(userId, clientId, "app.disconnect", "refused", "not connected", ct);
            return false;
        }
        await markers.PublishSessionsAsync(ended);
        await AuditAsync(userId, clientId, "app.disconnected", "success", $"{ended.Count} session(s) ended", ct);
        return true;
    }

    /// <summary>A refused request about an app (a bad token, a foreign app, an invalid form): recorded like every change.</summary>
    public Task RecordRefusalAsync(Guid? actorId, string clientId, string action, string detail, CancellationToken ct) =>
        AuditAsync(actorId, clientId, action, "refused", detail, ct);

    private async Task AuditAsync(Guid? actorId, string clientId, string action, string outcome, string detail, CancellationToken ct)
    {
        db.AppAuditEntries.Add(new AppAuditEntry
        {
            At = time.GetUtcNow(), ActorId = actorId, ClientId = clientId.Length > 100 ? clientId[..100] : clientId, Action = action, Outcome = outcome,
            Detail = detail.Length > 500 ? detail[..500] : detail,
            IpAddress = http.HttpContext?.Connection.RemoteIpAddress?.ToString() ?? "",
        });
        await db.SaveChangesAsync(ct);
        if (actorId is { } person && outcome == "success" && await db.Users.AnyAsync(u => u.Id == person, ct))
        {
            await securityLog.RecordAsync(person, action, ct);
        }
    }

    /// <summary>Identity's record of an app (newest first), for its developer and administrators.</summary>
    public Task<List<AppAuditEntry>> HistoryAsync(string clientId, int count, CancellationToken ct) =>
        db.AppAuditEntries.AsNoTracking().Where(e => e.ClientId == clientId).OrderByDescending(e => e.Id).Take(count).ToListAsync(ct);

    /// <summary>A single-use token to register one app through RFC 7591 (returned once; stored as its SHA-256).</summary>
    public async Task<(string? Token, DateTimeOffset ExpiresAt)> CreateInitialAccessTokenAsync(Guid ownerId, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var expires = now + options.Value.InitialAccessTokenLifetime;
        if (await db.InitialAccessTokens.CountAsync(t => t.OwnerId == ownerId && t.UsedAt == null && t.ExpiresAt > now, ct) >= options.Value.MaxOpenInitialAccessTokens)
        {
            await AuditAsync(ownerId, "-", "app.initial-token", "refused", "limit", ct);
            return (null, expires);
        }
        var token = RandomTokens.New();
        db.InitialAccessTokens.Add(new InitialAccessToken { Id = Guid.CreateVersion7(), OwnerId = ownerId, Hash = RandomTokens.LookupHash(token), CreatedAt = now, ExpiresAt = expires });
        await db.SaveChangesAsync(ct);
        await AuditAsync(ownerId, "-", "app.initial-token-created", "success", $"expires {expires:u}", ct);
        return (token, expires);
    }

    /// <summary>Uses up an initial access token (one statement: two racing registrations cannot both use it); its owner, or null.</summary>
    public async Task<Guid?> RedeemInitialAccessTokenAsync(string token, CancellationToken ct)
    {
        var hash = RandomTokens.LookupHash(token);
        var now = time.GetUtcNow();
        var owners = await db.Database.SqlQuery<Guid>($"""
            UPDATE "InitialAccessTokens" SET "UsedAt" = {now} WHERE "Hash" = {hash} AND "UsedAt" IS NULL AND "ExpiresAt" > {now} RETURNING "OwnerId" AS "Value"
            """).ToListAsync(ct);
        return owners.Count == 1 ? owners[0] : null;
    }
}
