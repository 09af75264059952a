using ClippyBot.Identity.Apps;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Pages.Developers;

/// <summary>The developer page's form for an app; the same rules as RFC 7591 apply to what it becomes (<see cref="AppRules"/>).</summary>
public sealed class AppForm
{
    /// <summary><c>spa</c> (web, public: code + PKCE), <c>server</c> (web, confidential), <c>native</c> (public, RFC 8252).</summary>
    public string Kind { get; set; } = "spa";

    public string? Name { get; set; }

    public List<string> GrantTypes { get; set; } = [OpenIddict.Abstractions.OpenIddictConstants.GrantTypes.AuthorizationCode];

    /// <summary>One URI a line.</summary>
    public string? RedirectUris { get; set; }

    public string? PostLogoutRedirectUris { get; set; }

    public List<string> Scopes { get; set; } = [OpenIddict.Abstractions.OpenIddictConstants.Scopes.OpenId];

    public int? AccessTokenLifetime { get; set; }

    public int? RefreshTokenLifetime { get; set; }

    public bool Confidential => Kind == "server";

    /// <summary>A refused form is shown again at most as long as it could be valid: a megabyte field is not sent back.</summary>
    public void ClipForRedisplay()
    {
        static string? Clip(string? text, int max) => text is { Length: var length } && length > max ? text[..max] : text;
        Name = Clip(Name, AppRules.MaxNameLength);
        RedirectUris = Clip(RedirectUris, AppRules.MaxUris * (AppRules.MaxUriLength + 1));
        PostLogoutRedirectUris = Clip(PostLogoutRedirectUris, AppRules.MaxUris * (AppRules.MaxUriLength + 1));
        Scopes = [.. Scopes.Take(AppRules.OfferedScopes.Count).Where(AppRules.OfferedScopes.Contains)];
        GrantTypes = [.. GrantTypes.Take(AllGrantTypes.Count).Where(AllGrantTypes.Contains)];
    }

    public AppRegistration ToRegistration() => new()
    {
        ClientName = Name,
        ApplicationType = Kind == "native" ? "native" : Kind is "spa" or "server" ? "web" : Kind,
        TokenEndpointAuthMethod = Kind == "server" ? AppRules.AuthBasic : AppRules.AuthNone,
        GrantTypes = GrantTypes,
        RedirectUris = Lines(RedirectUris),
        PostLogoutRedirectUris = Lines(PostLogoutRedirectUris),
        Scope = string.Join(' ', Scopes),
        AccessTokenLifetime = AccessTokenLifetime,
        RefreshTokenLifetime = RefreshTokenLifetime,
    };

    public static AppForm From(AppView app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return new()
        {
            Kind = app.Confidential ? "server" : app.Native ? "native" : "spa",
            Name = app.Name,
            GrantTypes = [.. app.GrantTypes],
            RedirectUris = string.Join('\n', app.RedirectUris),
            PostLogoutRedirectUris = string.Join('\n', app.PostLogoutRedirectUris),
            Scopes = [.. app.Scopes],
            AccessTokenLifetime = app.AccessTokenLifetime is { } a ? (int)a.TotalSeconds : null,
            RefreshTokenLifetime = app.RefreshTokenLifetime is { } r ? (int)r.TotalSeconds : null,
        };
    }

    private static List<string> Lines(string? text) =>
        [.. (text ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];

    public static readonly IReadOnlyList<(string Value, string Label)> Kinds =
    [
        ("spa", "Single-page or web app without a server secret (public: code + PKCE)"),
        ("server", "Web app with a server (confidential: a secret; code + PKCE and/or client credentials)"),
        ("native", "Desktop or mobile app (public: code + PKCE, loopback or its own scheme)"),
    ];

    public static readonly IReadOnlyList<string> AllGrantTypes =
        [OpenIddict.Abstractions.OpenIddictConstants.GrantTypes.AuthorizationCode, OpenIddict.Abstractions.OpenIddictConstants.GrantTypes.RefreshToken, OpenIddict.Abstractions.OpenIddictConstants.GrantTypes.ClientCredentials];
}

/// <summary>What the shared fields partial shows: the form, its errors by field, and whether the kind may still be chosen.</summary>
public sealed record AppFieldsView(AppForm Form, IReadOnlyDictionary<string, string> Errors, bool CanChooseKind);
