using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// Upper bounds on protocol parameters, checked before any lookup: an oversize value is a protocol error, never a
/// database query, a cache entry or a log line. Form bodies may be up to the edge's 1 MiB, so without these a single
/// request could carry a 900 KB client id into every cache keyed by it.
/// </summary>
public static class ParameterBounds
{
    /// <summary>Client ids are ours to assign; none is longer.</summary>
    public const int ClientId = 100;

    /// <summary>Our client secrets are 256-bit random values; the fast path and OpenIddict's path share this bound.</summary>
    public const int ClientSecret = 256;

    /// <summary>RFC 7636 §4.1: a code verifier is 43 to 128 characters.</summary>
    public const int CodeVerifier = 128;

    private static readonly Dictionary<string, int> Limits = new(StringComparer.Ordinal)
    {
        [Parameters.ClientId] = ClientId,
        [Parameters.CodeVerifier] = CodeVerifier,
        [Parameters.CodeChallenge] = 128,
        [Parameters.CodeChallengeMethod] = 16,
        [Parameters.GrantType] = 100,
        [Parameters.ResponseType] = 100,
        [Parameters.ResponseMode] = 32,
        [Parameters.Scope] = 1_024,
        [Parameters.State] = 2_048,
        [Parameters.Nonce] = 512,
        [Parameters.RedirectUri] = 2_048,
        [Parameters.PostLogoutRedirectUri] = 2_048,
        [Parameters.Prompt] = 64,
        [Parameters.MaxAge] = 16,
        [Parameters.UiLocales] = 256,
        [Parameters.LoginHint] = 320,
        [Parameters.ClientSecret] = ClientSecret,
    };

    /// <summary>Anything else (codes, refresh tokens, id_token_hint, assertions) is bounded by what we issue.</summary>
    public const int Default = 8_192;

    /// <summary>The first parameter that is too long, or null.</summary>
    public static string? FirstOversize(OpenIddictRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        foreach (var (name, value) in request.GetParameters())
        {
            var limit = Limits.GetValueOrDefault(name, Default);
            if (name.Length > 100 || TotalLength(value) > limit)
            {
                return name.Length > 100 ? name[..100] : name;
            }
        }
        return null;
    }

    private static long TotalLength(OpenIddictParameter value)
    {
        if ((string?)value is { } text)
        {
            return text.Length;
        }
        if ((System.Collections.Immutable.ImmutableArray<string?>?)value is { } values)
        {
            return values.Sum(v => (long)(v?.Length ?? 0));
        }
        return value.ToString()?.Length ?? 0;
    }
}
