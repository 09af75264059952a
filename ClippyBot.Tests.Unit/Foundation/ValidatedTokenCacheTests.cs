using System.Security.Claims;
using System.Security.Cryptography;
using ClippyBot.ServiceDefaults.Authentication;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace ClippyBot.Tests.Foundation;

[TestClass]
public sealed class ValidatedTokenCacheTests
{
    private static readonly ECDsaSecurityKey SigningKey = new(ECDsa.Create(ECCurve.NamedCurves.nistP256)) { KeyId = "k1" };

    private static string Token(string audience, DateTime expires) => new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
    {
        Issuer = "https://identity.test/",
        Audience = audience,
        Expires = expires,
        IssuedAt = DateTime.UtcNow,
        NotBefore = DateTime.UtcNow.AddMinutes(-1),
        TokenType = "at+jwt",
        Subject = new ClaimsIdentity([new Claim("sub", "user-1"), new Claim("scope", "api")]),
        SigningCredentials = new SigningCredentials(SigningKey, SecurityAlgorithms.EcdsaSha256),
    });

    private static TokenValidationParameters Rules(string audience) => new()
    {
        ValidIssuer = "https://identity.test/",
        ValidAudience = audience,
        ValidTypes = ["at+jwt"],
        IssuerSigningKey = SigningKey,
        RequireExpirationTime = true,
        RequireSignedTokens = true,
    };

    [TestMethod]
    public async Task A_token_validated_once_is_accepted_again_with_its_own_copy_of_the_claims()
    {
        using var cache = new ValidatedTokenCache(TimeProvider.System) { MapInboundClaims = false };
        var token = Token("clippybot-api", DateTime.UtcNow.AddMinutes(15));

        var first = await cache.ValidateTokenAsync(token, Rules("clippybot-api"));
        var second = await cache.ValidateTokenAsync(token, Rules("clippybot-api"));

        Assert.IsTrue(first.IsValid, first.Exception?.Message);
        Assert.IsTrue(second.IsValid);
        Assert.AreEqual("user-1", second.ClaimsIdentity.FindFirst("sub")?.Value, "claims as issued (no inbound mapping)");
        second.ClaimsIdentity.AddClaim(new Claim("added-by-a-request", "x"));
        var third = await cache.ValidateTokenAsync(token, Rules("clippybot-api"));
        Assert.IsNull(third.ClaimsIdentity.FindFirst("added-by-a-request"), "what one request adds never reaches another");
    }

    [TestMethod]
    public async Task A_tampered_token_or_another_audience_is_never_answered_from_the_cache()
    {
        using var cache = new ValidatedTokenCache(TimeProvider.System) { MapInboundClaims = false };
        var token = Token("clippybot-api", DateTime.UtcNow.AddMinutes(15));
        Assert.IsTrue((await cache.ValidateTokenAsync(token, Rules("clippybot-api"))).IsValid);

        var signature = token[(token.LastIndexOf('.') + 1)..];
        var tampered = token[..(token.LastIndexOf('.') + 1)] + (signature[0] == 'A' ? 'B' : 'A') + signature[1..];
        Assert.IsFalse((await cache.ValidateTokenAsync(tampered, Rules("clippybot-api"))).IsValid);
        Assert.IsFalse((await cache.ValidateTokenAsync(token, Rules("clippybot-pluginhost"))).IsValid, "accepted for one audience says nothing about another");
        var expired = Token("clippybot-api", DateTime.UtcNow.AddMinutes(-5));
        Assert.IsFalse((await cache.ValidateTokenAsync(expired, Rules("clippybot-api"))).IsValid);
        Assert.IsFalse((await cache.ValidateTokenAsync(expired, Rules("clippybot-api"))).IsValid, "an invalid result is not remembered as valid");
    }

    [TestMethod]
    public async Task A_remembered_token_is_refused_once_the_services_clock_passes_its_expiry()
    {
        var clock = new ClippyBot.Tests.Rig.ShiftedClock();
        using var cache = new ValidatedTokenCache(clock) { MapInboundClaims = false };
        var token = Token("clippybot-api", DateTime.UtcNow.AddMinutes(15));
        var rules = Rules("clippybot-api");
        rules.LifetimeValidator = cache.IsWithinLifetime;
        rules.ClockSkew = TimeSpan.FromSeconds(30);
        Assert.IsTrue((await cache.ValidateTokenAsync(token, rules)).IsValid);
        Assert.IsTrue((await cache.ValidateTokenAsync(token, rules)).IsValid, "remembered");

        clock.Advance(TimeSpan.FromMinutes(16));
        var late = await cache.ValidateTokenAsync(token, rules);
        Assert.IsFalse(late.IsValid, "past exp (and the skew) by the service's clock, the remembered token is refused");
        Assert.IsInstanceOfType<SecurityTokenInvalidLifetimeException>(late.Exception);
    }

    [TestMethod]
    public async Task A_token_signed_by_a_key_not_yet_known_is_reported_as_an_unknown_key_so_the_handler_fetches_the_keys_again()
    {
        using var cache = new ValidatedTokenCache(TimeProvider.System) { MapInboundClaims = false };
        var rules = Rules("clippybot-api");
        rules.LifetimeValidator = cache.IsWithinLifetime;
        using var rotated = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        // Like Identity's client-credentials tokens: no nbf.
        var token = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = "https://identity.test/",
            Audience = "clippybot-api",
            Expires = DateTime.UtcNow.AddMinutes(5),
            TokenType = "at+jwt",
            Subject = new ClaimsIdentity([new Claim("sub", "user-1")]),
            SigningCredentials = new SigningCredentials(new ECDsaSecurityKey(rotated) { KeyId = "k2" }, SecurityAlgorithms.EcdsaSha256),
        });

        var result = await cache.ValidateTokenAsync(token, rules);

        // The library checks the lifetime with DateTime.MinValue/MaxValue after the signature failed: the service's
        // lifetime rule threw on them, and JwtBearer refreshes its keys only for this exception type.
        Assert.IsFalse(result.IsValid);
        Assert.IsInstanceOfType<SecurityTokenSignatureKeyNotFoundException>(result.Exception, result.Exception?.ToString());
    }
}
