namespace ClippyBot.Identity.Oidc;

/// <summary>Configuration section <c>Oidc</c>. The AppHost passes the keys and client secrets as parameters.</summary>
public sealed class OidcOptions
{
    public const string SectionName = "Oidc";

    /// <summary>A random secret of at least 43 characters (≥ 256 bits): the AES-256-GCM key that seals signing and
    /// encryption keys at rest is derived from it with HKDF-SHA-256.</summary>
    public string KeyEncryptionKey { get; set; } = "";

    /// <summary>A random secret of at least 43 characters: the HMAC key for client secrets is derived from it.</summary>
    public string ClientSecretHashKey { get; set; } = "";

    public const int MinimumSecretLength = 43;

    /// <summary>Identity's scope in derived keys and sealed values' associated data.</summary>
    public const string Scope = "clippybot-identity";

    /// <summary>Derives a 32-byte key for one purpose from a configured secret.</summary>
    public static byte[] DeriveKey(string secret, string purpose) => ClippyBot.Security.KeyDerivation.DeriveKey(secret, Scope, purpose);

    public TimeSpan AccessTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);

    public TimeSpan IdentityTokenLifetime { get; set; } = TimeSpan.FromMinutes(15);

    public TimeSpan AuthorizationCodeLifetime { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>Idle lifetime: a refresh token unused this long dies (each use issues a new one).</summary>
    public TimeSpan RefreshTokenLifetime { get; set; } = TimeSpan.FromDays(14);

    /// <summary>Absolute lifetime of a login: no refresh past this, however active.</summary>
    public TimeSpan RefreshTokenAbsoluteLifetime { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How long a redeemed refresh token may be presented again before it counts as reuse (RFC 9700: 0).</summary>
    public TimeSpan RefreshTokenReuseLeeway { get; set; } = TimeSpan.Zero;

    /// <summary>How long one signing key signs before the next takes over.</summary>
    public TimeSpan SigningKeyRotationPeriod { get; set; } = TimeSpan.FromDays(30);

    /// <summary>How long before taking over a new key is published in JWKS, so caches have it first.</summary>
    public TimeSpan SigningKeyPublishAhead { get; set; } = TimeSpan.FromDays(2);

    /// <summary>How often each replica re-reads the key ring (and rotates when due).</summary>
    public TimeSpan KeyRingRefreshInterval { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often expired token and authorization rows are deleted.</summary>
    public TimeSpan PruneInterval { get; set; } = TimeSpan.FromHours(1);

    public List<OidcClientOptions> Clients { get; set; } = [];

    /// <summary>
    /// The issuer written into every token and the discovery document (e.g. <c>https://id.clippybot.dev/</c>). Required
    /// outside local development: taken from the request's Host header, whoever sends a request would choose it.
    /// </summary>
    public string? Issuer { get; set; }

    /// <summary>Most client registrations (known and unknown ids) one replica remembers (<see cref="ClientLookupCache"/>).</summary>
    public int ClientCacheSize { get; set; } = 10_000;

    /// <summary>Keys stay published until every token they signed has expired; refresh tokens live longest.</summary>
    /// <summary>How long a key an operator rotated away stays published: the short-lived tokens it signed, not refresh tokens.</summary>
    public TimeSpan RotatedKeyRetention => new[] { AccessTokenLifetime, IdentityTokenLifetime, AuthorizationCodeLifetime }.Max() + TimeSpan.FromMinutes(5);

    public TimeSpan SigningKeyRetention => new[] { AccessTokenLifetime, IdentityTokenLifetime, AuthorizationCodeLifetime, RefreshTokenLifetime }.Max() + TimeSpan.FromMinutes(5);
}

public sealed class OidcClientOptions
{
    public string ClientId { get; set; } = "";

    public string DisplayName { get; set; } = "";

    /// <summary>Empty for public clients. Stored only as a keyed hash.</summary>
    public string? ClientSecret { get; set; }

    /// <summary><c>authorization_code</c>, <c>refresh_token</c>, <c>client_credentials</c>.</summary>
    public List<string> GrantTypes { get; set; } = [];

    public List<string> Scopes { get; set; } = [];

    public List<string> RedirectUris { get; set; } = [];

    public List<string> PostLogoutRedirectUris { get; set; } = [];

    /// <summary>First-party browser client: its refresh token travels only in an HttpOnly cookie (see RefreshTokenCookie).</summary>
    public bool RefreshTokenInCookie { get; set; }

    /// <summary>Resource servers: may introspect tokens issued for them.</summary>
    public bool Introspection { get; set; }

    /// <summary>ClippyBot's own app (or tool): accounts with an unverified address may sign in to it. Others are third parties.</summary>
    public bool FirstParty { get; set; }

    /// <summary>A developer's tool (e.g. <c>clippybot-dev</c>): registered only when the environment is Development.</summary>
    public bool DevelopmentOnly { get; set; }
}
