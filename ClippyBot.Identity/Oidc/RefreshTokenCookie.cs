using Microsoft.AspNetCore;
using OpenIddict.Abstractions;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// Seed §3.3 for first-party browser clients (<see cref="OidcClientOptions.RefreshTokenInCookie"/>): their refresh token
/// never reaches JavaScript. The token endpoint answers it in a <c>__Host-</c> cookie (HttpOnly, Secure,
/// SameSite=Strict) instead of the JSON body, and refresh requests for such a client take it from that cookie only.
/// CSRF: a cookie-borne refresh needs the custom header <see cref="CsrfHeader"/> (which a cross-site form cannot send
/// and CORS only allows from the client's own origins) and an <c>Origin</c> among the client's registered origins.
/// </summary>
public static class RefreshTokenCookie
{
    public const string Name = "__Host-clippybot.refresh";
    public const string CsrfHeader = "X-ClippyBot-Refresh";
    public const string CorsPolicy = "refresh-cookie-clients";

    public static IReadOnlyDictionary<string, string[]> OriginsByClient(OidcOptions options) =>
        options.Clients.Where(c => c.RefreshTokenInCookie).ToDictionary(
            c => c.ClientId,
            c => c.RedirectUris.Select(u => new Uri(u).GetLeftPart(UriPartial.Authority)).Distinct(StringComparer.OrdinalIgnoreCase).ToArray(),
            StringComparer.Ordinal);

    public static void Register(OpenIddictServerBuilder server)
    {
        server.AddEventHandler<ExtractTokenRequestContext>(h => h.UseSingletonHandler<TakeRefreshTokenFromCookie>().SetOrder(int.MaxValue));
        server.AddEventHandler<ApplyTokenResponseContext>(h => h.UseSingletonHandler<MoveRefreshTokenToCookie>().SetOrder(int.MinValue + 1));
    }

    internal sealed class TakeRefreshTokenFromCookie(IOptions<OidcOptions> options) : IOpenIddictServerHandler<ExtractTokenRequestContext>
    {
        private readonly IReadOnlyDictionary<string, string[]> _origins = OriginsByClient(options.Value);

        public ValueTask HandleAsync(ExtractTokenRequestContext context)
        {
            var request = context.Request;
            if (request?.ClientId is not { } clientId || !_origins.TryGetValue(clientId, out var origins) || !request.IsRefreshTokenGrantType())
            {
                return default;
            }
            var http = context.Transaction.GetHttpRequest() ?? throw new InvalidOperationException("No HTTP request.");
            if (!string.IsNullOrEmpty(request.RefreshToken))
            {
                context.Reject(Errors.InvalidRequest, "This client's refresh token travels only in its cookie.");
            }
            else if (http.Headers[CsrfHeader] != "1")
            {
                context.Reject(Errors.InvalidRequest, $"The {CsrfHeader} header is required.");
            }
            else if (!origins.Contains(http.Headers.Origin.ToString(), StringComparer.OrdinalIgnoreCase))
            {
                context.Reject(Errors.InvalidRequest, "The request's origin is not one of this client's.");
            }
            else if (!http.Cookies.TryGetValue(Name, out var cookie) || string.IsNullOrEmpty(cookie))
            {
                context.Reject(Errors.InvalidGrant, "There is no refresh cookie; sign in again.");
            }
            else
            {
                request.RefreshToken = cookie;
            }
            return default;
        }
    }

    internal sealed class MoveRefreshTokenToCookie(IOptions<OidcOptions> options) : IOpenIddictServerHandler<ApplyTokenResponseContext>
    {
        private readonly HashSet<string> _clients = [.. OriginsByClient(options.Value).Keys];
        private readonly TimeSpan _lifetime = options.Value.RefreshTokenLifetime;

        public ValueTask HandleAsync(ApplyTokenResponseContext context)
        {
            if (context.Request?.ClientId is not { } clientId || !_clients.Contains(clientId))
            {
                return default;
            }
            var response = context.Transaction.GetHttpRequest()?.HttpContext.Response ?? throw new InvalidOperationException("No HTTP response.");
            if (!string.IsNullOrEmpty(context.Response.RefreshToken))
            {
                response.Cookies.Append(Name, context.Response.RefreshToken, new CookieOptions
                {
                    HttpOnly = true,
                    Secure = true,
                    SameSite = SameSiteMode.Strict,
                    Path = "/",
                    MaxAge = _lifetime,
                    IsEssential = true,
                });
                context.Response.RefreshToken = null;
            }
            else if (context.Response.Error == Errors.InvalidGrant && context.Request.IsRefreshTokenGrantType())
            {
                // A dead refresh token should not be sent again and again.
                response.Cookies.Delete(Name, new CookieOptions { Secure = true, SameSite = SameSiteMode.Strict, Path = "/", HttpOnly = true });
            }
            return default;
        }
    }
}
