using System.Security.Claims;
using Microsoft.Extensions.Caching.Memory;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace ClippyBot.ServiceDefaults.Authentication;

/// <summary>
/// Remembers access tokens this process has fully validated, so a client sending the same token again (a person's
/// browser, the Api's service token on every plugin call) does not pay the ES256 verification each time. An entry lives
/// no longer than the token itself (its <c>exp</c>); issuer, audience and type are fixed per service, and a signing key
/// leaves Identity's JWKS only after every token it signed has expired, so a remembered result stays what a fresh
/// validation would say. Revocation is not decided here (markers are checked per request). Every hit gets its own copy
/// of the claims, so nothing a request adds can leak into another.
/// </summary>
public sealed class ValidatedTokenCache : JsonWebTokenHandler, IDisposable
{
    private readonly MemoryCache _validated = new(new MemoryCacheOptions { SizeLimit = 50_000 });
    private readonly TimeProvider _time;

    public ValidatedTokenCache(TimeProvider time) => _time = time;

    /// <summary>
    /// Lifetime by the service's clock (the library's own check reads the system clock), with the rules' skew: set as the
    /// rules' <see cref="TokenValidationParameters.LifetimeValidator"/>, so a remembered token and a fresh one expire alike.
    /// </summary>
    public bool IsWithinLifetime(DateTime? notBefore, DateTime? expires, SecurityToken token, TokenValidationParameters validationParameters)
    {
        ArgumentNullException.ThrowIfNull(validationParameters);
        // The skew is applied to now, never to the token's times: the library also asks with DateTime.MinValue/MaxValue
        // (after a signature failure), and arithmetic on those throws — which hid "unknown signing key" from the handler,
        // so it never fetched Identity's new keys.
        var now = _time.GetUtcNow().UtcDateTime;
        return expires is { } until && until.ToUniversalTime() > now - validationParameters.ClockSkew
            && (notBefore is not { } from || from.ToUniversalTime() <= now + validationParameters.ClockSkew);
    }

    public override async Task<TokenValidationResult> ValidateTokenAsync(string token, TokenValidationParameters validationParameters)
    {
        ArgumentNullException.ThrowIfNull(token);
        ArgumentNullException.ThrowIfNull(validationParameters);
        // Per audience: a token accepted by one set of rules says nothing about another.
        var key = (validationParameters.ValidAudience ?? "", token);
        // The cache's own expiry follows the system clock; the service's clock decides (with the rules' skew, as a fresh
        // validation would), so a remembered token is refused the moment it expires.
        if (_validated.TryGetValue(key, out Validated? hit) && hit is not null
            && new DateTimeOffset(hit.Token.ValidTo, TimeSpan.Zero) + validationParameters.ClockSkew > _time.GetUtcNow())
        {
            return new TokenValidationResult
            {
                IsValid = true,
                ClaimsIdentity = hit.Identity.Clone(),
                SecurityToken = hit.Token,
                Issuer = hit.Token.Issuer,
                TokenType = hit.Token.Typ,
            };
        }
        var result = await base.ValidateTokenAsync(token, validationParameters);
        if (result.IsValid && result.SecurityToken is JsonWebToken jwt && result.ClaimsIdentity is { } identity)
        {
            var expires = new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero);
            if (expires > _time.GetUtcNow())
            {
                _validated.Set(key, new Validated(jwt, identity.Clone()),
                    new MemoryCacheEntryOptions { Size = 1, AbsoluteExpiration = expires });
            }
        }
        return result;
    }

    public void Dispose() => _validated.Dispose();

    private sealed record Validated(JsonWebToken Token, ClaimsIdentity Identity);
}
