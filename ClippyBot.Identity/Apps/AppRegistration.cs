using System.Text.Json.Serialization;
using ClippyBot.Identity.Oidc;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Apps;

/// <summary>
/// What a developer asks for when registering or changing an app: RFC 7591's client metadata (the JSON of
/// <c>/connect/register</c>), which the developer pages fill from their form too, so both are checked by one set of rules.
/// </summary>
public sealed class AppRegistration
{
    [JsonPropertyName("client_name")]
    public string? ClientName { get; set; }

    /// <summary><c>web</c> (a server or a single-page app) or <c>native</c> (desktop or mobile, RFC 8252).</summary>
    [JsonPropertyName("application_type")]
    public string? ApplicationType { get; set; }

    /// <summary><c>none</c> (a public client: code + PKCE only), <c>client_secret_basic</c> or <c>client_secret_post</c> (confidential).</summary>
    [JsonPropertyName("token_endpoint_auth_method")]
    public string? TokenEndpointAuthMethod { get; set; }

    [JsonPropertyName("grant_types")]
    public List<string>? GrantTypes { get; set; }

    [JsonPropertyName("redirect_uris")]
    public List<string>? RedirectUris { get; set; }

    [JsonPropertyName("post_logout_redirect_uris")]
    public List<string>? PostLogoutRedirectUris { get; set; }

    /// <summary>Space-separated scopes the app may ask for (a subset of <see cref="AppRules.OfferedScopes"/>).</summary>
    [JsonPropertyName("scope")]
    public string? Scope { get; set; }

    /// <summary>Seconds, within <see cref="AppRules.AccessTokenLifetimes"/>; the platform's default when absent.</summary>
    [JsonPropertyName("access_token_lifetime")]
    public int? AccessTokenLifetime { get; set; }

    /// <summary>Seconds, within <see cref="AppRules.RefreshTokenLifetimes"/>; the platform's default when absent.</summary>
    [JsonPropertyName("refresh_token_lifetime")]
    public int? RefreshTokenLifetime { get; set; }
}

/// <summary>A registration that passed the rules: every field decided.</summary>
public sealed record ValidAppRegistration(
    string Name, bool Native, bool Confidential, IReadOnlyList<string> GrantTypes, IReadOnlyList<Uri> RedirectUris,
    IReadOnlyList<Uri> PostLogoutRedirectUris, IReadOnlyList<string> Scopes, TimeSpan? AccessTokenLifetime, TimeSpan? RefreshTokenLifetime,
    string AuthMethod);

/// <summary>
/// The rules every app registration meets, with an error per field (the developer pages show them beside the fields;
/// RFC 7591 answers <c>invalid_redirect_uri</c> or <c>invalid_client_metadata</c> naming the field).
/// </summary>
public static class AppRules
{
    public const int MaxNameLength = 100;
    public const int MaxUris = 10;
    public const int MaxUriLength = 2_000;

    /// <summary>The scopes an app may be given; the platform's internal ones (PluginHost, Identity's service APIs) are never offered.</summary>
    public static readonly IReadOnlyList<string> OfferedScopes = OidcResources.UserScopes;

    /// <summary>What each offered scope lets an app do, in the words the consent page uses.</summary>
    public static readonly IReadOnlyDictionary<string, string> ScopeDescriptions = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [Scopes.OpenId] = "Know who you are on ClippyBot (your account id).",
        [Scopes.Profile] = "See your user name.",
        [Scopes.Email] = "See your email address and whether it is verified.",
        [Scopes.OfflineAccess] = "Keep access while you are away, until you disconnect it.",
        [OidcResources.ApiScope] = "Use ClippyBot's API as you: your workspaces, their members, files, plugins and settings, within your role.",
    };

    /// <summary>The platform's bounds: access tokens at most its 15 minutes; refresh tokens at most its idle lifetime.</summary>
    public static readonly (TimeSpan Min, TimeSpan Max) AccessTokenLifetimes = (TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(15));

    public static readonly (TimeSpan Min, TimeSpan Max) RefreshTokenLifetimes = (TimeSpan.FromHours(1), TimeSpan.FromDays(14));

    public const string AuthNone = "none";
    public const string AuthBasic = "client_secret_basic";
    public const string AuthPost = "client_secret_post";

    /// <param name="platform">The platform's own access and refresh token lifetimes: no app's may be longer (revocation markers outlive only those).</param>
    public static (ValidAppRegistration? Valid, Dictionary<string, string> Errors) Validate(AppRegistration request, (TimeSpan Access, TimeSpan Refresh)? platform = null)
    {
        ArgumentNullException.ThrowIfNull(request);
        var errors = new Dictionary<string, string>(StringComparer.Ordinal);
        var name = request.ClientName?.Trim() ?? "";
        if (name.Length == 0)
        {
            errors["client_name"] = "Give the app a name.";
        }
        else if (name.Length > MaxNameLength || name.Any(char.IsControl))
        {
            errors["client_name"] = $"The name is at most {MaxNameLength} characters, without control characters.";
        }

        var type = request.ApplicationType ?? "web";
        if (type is not ("web" or "native"))
        {
            errors["application_type"] = "The application type is 'web' or 'native'.";
        }
        var native = type == "native";
        var auth = request.TokenEndpointAuthMethod ?? (native ? AuthNone : AuthBasic);
        if (auth is not (AuthNone or AuthBasic or AuthPost))
        {
            errors["token_endpoint_auth_method"] = "The token endpoint authentication method is 'none', 'client_secret_basic' or 'client_secret_post'.";
        }
        else if (native && auth != AuthNone)
        {
            errors["token_endpoint_auth_method"] = "A native app cannot keep a secret (RFC 8252): its method is 'none'.";
        }
        var confidential = auth is AuthBasic or AuthPost;

        var grants = (request.GrantTypes is { Count: > 0 } g ? g : [GrantTypes.AuthorizationCode]).Distinct(StringComparer.Ordinal).ToList();
        if (grants.Any(x => x is not (GrantTypes.AuthorizationCode or GrantTypes.RefreshToken or GrantTypes.ClientCredentials)))
        {
            errors["grant_types"] = "The grant types are 'authorization_code', 'refresh_token' and 'client_credentials' (no implicit or password grant).";
        }
        else if (grants.Contains(GrantTypes.RefreshToken) && !grants.Contains(GrantTypes.AuthorizationCode))
        {
            errors["grant_types"] = "'refresh_token' comes with 'authorization_code'.";
        }
        else if (grants.Contains(GrantTypes.ClientCredentials) && !confidential)
        {
            errors["grant_types"] = "'client_credentials' needs a confidential app (a secret).";
        }
        var code = grants.Contains(GrantTypes.AuthorizationCode);

        var redirects = CheckUris(request.RedirectUris, native, "redirect_uris", errors);
        if (code && redirects.Count == 0 && !errors.ContainsKey("redirect_uris"))
        {
            errors["redirect_uris"] = "The code flow needs at least one redirect URI.";
        }
        else if (!code && redirects.Count > 0)
        {
            errors["redirect_uris"] = "Redirect URIs are only for the code flow.";
        }
        var postLogout = CheckUris(request.PostLogoutRedirectUris, native, "post_logout_redirect_uris", errors);

        var scopes = (request.Scope ?? Scopes.OpenId).Split(' ', StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        if (request.Scope?.Length > 1_000 || scopes.Any(s => !OfferedScopes.Contains(s)))
        {
            errors["scope"] = $"The scopes an app may use are: {string.Join(' ', OfferedScopes)}.";
        }
        else if (scopes.Contains(Scopes.OfflineAccess) && !grants.Contains(GrantTypes.RefreshToken))
        {
            errors["scope"] = "'offline_access' needs the 'refresh_token' grant.";
        }
        else if (!code && scopes.Any(s => s != OidcResources.ApiScope))
        {
            errors["scope"] = "An app with only 'client_credentials' acts as itself: its only scope is 'api'.";
        }
        else if (scopes.Count == 0)
        {
            errors["scope"] = "Choose at least one scope.";
        }

        var access = Lifetime(request.AccessTokenLifetime, Within(AccessTokenLifetimes, platform?.Access), "access_token_lifetime", errors);
        var refresh = Lifetime(request.RefreshTokenLifetime, Within(RefreshTokenLifetimes, platform?.Refresh), "refresh_token_lifetime", errors);
        return errors.Count > 0
            ? (null, errors)
            : (new ValidAppRegistration(name, native, confidential, grants, redirects, postLogout, scopes, access, refresh, auth), errors);
    }

    private static (TimeSpan Min, TimeSpan Max) Within((TimeSpan Min, TimeSpan Max) bounds, TimeSpan? platform) =>
        platform is { } limit && limit < bounds.Max ? (bounds.Min < limit ? bounds.Min : limit, limit) : bounds;

    private static TimeSpan? Lifetime(int? seconds, (TimeSpan Min, TimeSpan Max) bounds, string field, Dictionary<string, string> errors)
    {
        if (seconds is null)
        {
            return null;
        }
        var lifetime = TimeSpan.FromSeconds(seconds.Value);
        if (lifetime < bounds.Min || lifetime > bounds.Max)
        {
            errors[field] = $"Between {(long)bounds.Min.TotalSeconds} and {(long)bounds.Max.TotalSeconds} seconds.";
            return null;
        }
        return lifetime;
    }

    /// <summary>
    /// Exact strings, no wildcards, no fragment, no user info. A web app's are https; a native app's are https, an http
    /// loopback IP literal (any port, RFC 8252 §7.3) or a private-use scheme in reverse-domain form (§7.1).
    /// </summary>
    private static List<Uri> CheckUris(List<string>? texts, bool native, string field, Dictionary<string, string> errors)
    {
        var uris = new List<Uri>();
        if (texts is null)
        {
            return uris;
        }
        if (texts.Count > MaxUris)
        {
            errors[field] = $"At most {MaxUris} URIs.";
            return uris;
        }
        foreach (var text in texts)
        {
            var problem = UriProblem(text, native);
            if (problem is not null)
            {
                errors[field] = $"'{(text?.Length > 100 ? text[..100] + "…" : text)}': {problem}";
                return [];
            }
            uris.Add(new Uri(text!, UriKind.Absolute));
        }
        return uris;
    }

    private static string? UriProblem(string? text, bool native)
    {
        if (string.IsNullOrWhiteSpace(text) || text.Length > MaxUriLength || text.Any(c => char.IsControl(c) || char.IsWhiteSpace(c)))
        {
            return $"not a URI of at most {MaxUriLength} characters without spaces.";
        }
        if (text.Contains('*', StringComparison.Ordinal))
        {
            return "wildcards are not allowed: register each URI exactly.";
        }
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri))
        {
            return "not an absolute URI.";
        }
        if (text.Contains('#', StringComparison.Ordinal))
        {
            return "a redirect URI has no fragment.";
        }
        if (uri.UserInfo.Length > 0)
        {
            return "a redirect URI has no user name or password.";
        }
        if (uri.Scheme == Uri.UriSchemeHttps)
        {
            return null;
        }
        if (!native)
        {
            return "a web app's redirect URIs are https.";
        }
        if (uri.Scheme == Uri.UriSchemeHttp)
        {
            return System.Net.IPAddress.TryParse(uri.Host.Trim('[', ']'), out var ip) && System.Net.IPAddress.IsLoopback(ip)
                ? null
                : "a native app uses http only on a loopback IP literal (127.0.0.1 or [::1]), not 'localhost' (RFC 8252 §7.3).";
        }
        return uri.Scheme.Contains('.', StringComparison.Ordinal) && uri.Scheme is not ("javascript" or "data" or "file")
            ? null
            : "a native app's own scheme is in reverse-domain form, e.g. com.example.app:/callback (RFC 8252 §7.1).";
    }
}
