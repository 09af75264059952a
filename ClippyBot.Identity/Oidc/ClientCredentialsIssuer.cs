using System.Buffers;
using System.Buffers.Text;
using System.Collections.Frozen;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using ClippyBot.Identity.Crypto;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.EntityFrameworkCore.Models;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// Answers the ordinary client-credentials request (a confidential client, <c>client_secret_basic</c> or <c>client_secret_post</c>, scopes it may
/// use) without OpenIddict's request pipeline, which costs about three times what the token itself costs. It issues
/// exactly the token OpenIddict would (same signing key, claims, header and response; a test compares the two) and needs
/// no database row. Anything else — a failed check, an unknown parameter, a duplicate, both client authentications, plain http
/// where it is not allowed — is left to OpenIddict, which answers it, errors included: this path can only issue what
/// OpenIddict would have issued, never refuse differently. Unknown client and wrong secret both fall through after the
/// same keyed-hash work, so their timing stays alike.
/// </summary>
internal sealed class ClientCredentialsIssuer(
    IServiceScopeFactory scopes,
    ClientLookupCache cache,
    Apps.ClientChanges changes,
    SecretHasher hasher,
    IOptionsMonitor<OpenIddictServerOptions> server,
    TimeProvider time,
    bool allowHttp)
{
    public const string TokenPath = "/connect/token";

    private static readonly FrozenSet<string> KnownParameters =
        new[] { Parameters.GrantType, Parameters.ClientId, Parameters.ClientSecret, Parameters.Scope }.ToFrozenSet(StringComparer.Ordinal);

    private static readonly object NotEligible = new();

    // As IdentityModel writes JWTs: "at+jwt", not "at\u002Bjwt".
    private static readonly JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    private static readonly JsonWriterOptions Writer = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private HeaderCache? _header;

    public static bool IsTokenRequest(HttpContext context) =>
        HttpMethods.IsPost(context.Request.Method) && context.Request.Path.Equals(TokenPath, StringComparison.OrdinalIgnoreCase);

    /// <summary>Issues the token and returns true, or returns false having written nothing.</summary>
    public async Task<bool> TryIssueAsync(HttpContext context)
    {
        var request = context.Request;
        if ((!request.IsHttps && !allowHttp) || !request.Host.HasValue || request.Headers.Authorization.Count > 1
            || !request.HasFormContentType)
        {
            return false;
        }
        // client_secret_basic (what most client libraries send) or client_secret_post — never both in one request.
        var basic = request.Headers.Authorization.Count == 1 ? BasicCredentials(request.Headers.Authorization.ToString()) : null;
        if (request.Headers.Authorization.Count == 1 && basic is null)
        {
            return false;
        }
        var form = await request.ReadFormAsync(context.RequestAborted);
        foreach (var (name, values) in form)
        {
            if (!KnownParameters.Contains(name) || values.Count != 1 || string.IsNullOrEmpty(values[0]) || values[0]!.Length > 1_024
                || (basic is not null && name is Parameters.ClientId or Parameters.ClientSecret))
            {
                return false;
            }
        }
        var (clientId, secret) = basic ?? (form[Parameters.ClientId].ToString(), form[Parameters.ClientSecret].ToString());
        if (form[Parameters.GrantType] != GrantTypes.ClientCredentials
            || clientId is not { Length: > 0 and <= ParameterBounds.ClientId }
            || secret is not { Length: > 0 and <= ParameterBounds.ClientSecret }
            || form[Parameters.Scope].ToString() is not { Length: > 0 } scope)
        {
            return false;
        }

        var client = await FindClientAsync(clientId, context.RequestAborted);
        // Both MACs are computed whether or not the client exists or has a previous secret.
        var current = hasher.Verify(secret, client?.SecretHash);
        var previous = hasher.Verify(secret, client?.PreviousSecretHash);
        if (client is null || !(current || (previous && client.PreviousSecretExpires > time.GetUtcNow())))
        {
            return false;
        }
        var requested = scope.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (!requested.All(client.Scopes.Contains) || requested.Distinct(StringComparer.Ordinal).Count() != requested.Length)
        {
            return false;
        }

        var options = server.CurrentValue;
        if (options.SigningCredentials.FirstOrDefault() is not { Key: ECDsaSecurityKey { KeyId: { Length: > 0 } } key })
        {
            return false;
        }
        var issuer = options.Issuer?.AbsoluteUri ?? new Uri(request.Scheme + Uri.SchemeDelimiter + request.Host + request.PathBase, UriKind.Absolute).AbsoluteUri;
        var now = time.GetUtcNow();
        var lifetime = client.AccessTokenLifetime ?? options.AccessTokenLifetime ?? TimeSpan.FromHours(1);
        var token = Sign(key, Payload(issuer, now, now + lifetime, requested, clientId));

        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json;charset=UTF-8";
        response.Headers.CacheControl = "no-store";
        response.Headers.Pragma = "no-cache";
        response.Headers.Expires = "Thu, 01 Jan 1970 00:00:00 GMT";
        await response.BodyWriter.WriteAsync(TokenResponse(token, (long)lifetime.TotalSeconds), context.RequestAborted);
        return true;
    }

    /// <summary>
    /// RFC 6749 §2.3.1: <c>Basic base64(urlencode(client_id) ":" urlencode(client_secret))</c>; null for anything else
    /// (which OpenIddict then answers).
    /// </summary>
    internal static (string ClientId, string Secret)? BasicCredentials(string header)
    {
        const string Prefix = "Basic ";
        if (header.Length > 2_048 || !header.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        Span<byte> bytes = stackalloc byte[1_536];
        if (!Convert.TryFromBase64String(header[Prefix.Length..].Trim(), bytes, out var written))
        {
            return null;
        }
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes[..written]);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            return null;
        }
        static string Decode(string part) => Uri.UnescapeDataString(part.Replace('+', ' '));
        return (Decode(text[..colon]), Decode(text[(colon + 1)..]));
    }

    private async ValueTask<EligibleClient?> FindClientAsync(string clientId, CancellationToken ct)
    {
        var key = ClientCacheKeys.Credentials(clientId);
        // While client changes may go unheard, nothing cached is trusted (a deleted app must not keep minting tokens).
        var trusted = changes.Listening;
        if (trusted && cache.TryGetValue(key, out object? cached))
        {
            return cached as EligibleClient;
        }
        var generation = cache.Generation;
        await using var scope = scopes.CreateAsyncScope();
        var manager = scope.ServiceProvider.GetRequiredService<IOpenIddictApplicationManager>();
        var application = await manager.FindByClientIdAsync(clientId, ct);
        EligibleClient? client = null;
        if (application is OpenIddictEntityFrameworkCoreApplication { ClientSecret: { Length: > 0 } secretHash }
            && await manager.HasClientTypeAsync(application, ClientTypes.Confidential, ct)
            && await manager.HasPermissionAsync(application, Permissions.Endpoints.Token, ct)
            && await manager.HasPermissionAsync(application, Permissions.Prefixes.GrantType + GrantTypes.ClientCredentials, ct))
        {
            var permissions = await manager.GetPermissionsAsync(application, ct);
            // Only scopes that name a resource server: anything else (openid, offline_access…) is OpenIddict's to judge.
            var scopes = permissions
                .Where(p => p.StartsWith(Permissions.Prefixes.Scope, StringComparison.Ordinal))
                .Select(p => p[Permissions.Prefixes.Scope.Length..])
                .Where(OidcResources.ResourceByScope.ContainsKey)
                .ToFrozenSet(StringComparer.Ordinal);
            var properties = await manager.GetPropertiesAsync(application, ct);
            var settings = await manager.GetSettingsAsync(application, ct);
            client = new EligibleClient(secretHash, scopes,
                properties.TryGetValue(Apps.AppProperties.PreviousSecret, out var previous) && previous.ValueKind == System.Text.Json.JsonValueKind.String ? previous.GetString() : null,
                properties.TryGetValue(Apps.AppProperties.PreviousSecretExpires, out var until) && until.ValueKind == System.Text.Json.JsonValueKind.Number
                    ? DateTimeOffset.FromUnixTimeSeconds(until.GetInt64()) : DateTimeOffset.MinValue,
                settings.TryGetValue(Settings.TokenLifetimes.AccessToken, out var lifetime)
                    && TimeSpan.TryParse(lifetime, System.Globalization.CultureInfo.InvariantCulture, out var accessLifetime) ? accessLifetime : null);
        }
        if (trusted)
        {
            cache.SetIfUnchanged(key, (object?)client ?? NotEligible, generation);
        }
        return client;
    }

    private static byte[] Payload(string issuer, DateTimeOffset now, DateTimeOffset expires, string[] scopes, string clientId)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer, Writer))
        {
            json.WriteStartObject();
            json.WriteString(Claims.Issuer, issuer);
            json.WriteNumber(Claims.ExpiresAt, expires.ToUnixTimeSeconds());
            json.WriteNumber(Claims.IssuedAt, now.ToUnixTimeSeconds());
            var audiences = OidcResources.ResourcesFor(scopes);
            if (audiences.Count == 1)
            {
                json.WriteString(Claims.Audience, audiences[0]);
            }
            else
            {
                json.WriteStartArray(Claims.Audience);
                audiences.ForEach(json.WriteStringValue);
                json.WriteEndArray();
            }
            json.WriteString(Claims.Scope, string.Join(' ', scopes));
            json.WriteString(Claims.JwtId, Guid.NewGuid().ToString());
            json.WriteString(Claims.Subject, clientId);
            json.WriteString(Claims.Private.Presenter, clientId);
            json.WriteString(Claims.ClientId, clientId);
            json.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private string Sign(ECDsaSecurityKey key, byte[] payload)
    {
        var header = _header is { } cached && cached.KeyId == key.KeyId ? cached : (_header = new HeaderCache(key.KeyId));
        var payloadLength = Base64Url.GetEncodedLength(payload.Length);
        var signingInput = new byte[header.Encoded.Length + 1 + payloadLength];
        header.Encoded.CopyTo(signingInput, 0);
        signingInput[header.Encoded.Length] = (byte)'.';
        Base64Url.EncodeToUtf8(payload, signingInput.AsSpan(header.Encoded.Length + 1));
        // JWS ES256 is the raw r‖s pair (IEEE P1363), which is .NET's default signature format.
        var signature = key.ECDsa.SignData(signingInput, HashAlgorithmName.SHA256);
        return Encoding.ASCII.GetString(signingInput) + "." + Base64Url.EncodeToString(signature);
    }

    private static ReadOnlyMemory<byte> TokenResponse(string token, long expiresIn)
    {
        var buffer = new ArrayBufferWriter<byte>(token.Length + 96);
        using (var json = new Utf8JsonWriter(buffer, Writer))
        {
            json.WriteStartObject();
            json.WriteString(Parameters.AccessToken, token);
            json.WriteString(Parameters.TokenType, TokenTypes.Bearer);
            json.WriteNumber(Parameters.ExpiresIn, expiresIn);
            json.WriteEndObject();
        }
        return buffer.WrittenMemory;
    }

    /// <summary>What the fast path needs of a client: its secret (and, during a rotation's grace period, the previous one), scopes and token lifetime.</summary>
    private sealed record EligibleClient(string SecretHash, FrozenSet<string> Scopes, string? PreviousSecretHash, DateTimeOffset PreviousSecretExpires, TimeSpan? AccessTokenLifetime);

    private sealed class HeaderCache(string keyId)
    {
        public string KeyId { get; } = keyId;

        public byte[] Encoded { get; } = Encoding.ASCII.GetBytes(Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(
            new Dictionary<string, string> { ["alg"] = SecurityAlgorithms.EcdsaSha256, ["kid"] = keyId, ["typ"] = JsonWebTokenTypes.AccessToken }, Json)));
    }
}

/// <summary>One process-wide cache of client registrations, evicted together when a client changes.</summary>
internal static class ClientCacheKeys
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(30);

    public static string Application(string clientId) => "clippybot:oidc-app:" + clientId;

    public static string Credentials(string clientId) => "clippybot:oidc-cc:" + clientId;
}
