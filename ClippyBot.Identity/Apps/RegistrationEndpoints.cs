using System.Text.Json;
using ClippyBot.Identity.Accounts;
using ClippyBot.Identity.Oidc;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Identity;

namespace ClippyBot.Identity.Apps;

/// <summary>
/// Dynamic client registration for automation: RFC 7591 (<c>POST /connect/register</c> with an initial access token a
/// developer made on their page) and RFC 7592 (read, replace, delete with the registration access token returned then).
/// The same rules as the developer pages (<see cref="AppRules"/>). Every refusal is recorded; a wrong token counts
/// against the caller's address as at the token endpoint.
/// </summary>
public static class RegistrationEndpoints
{
    public const string Path = "/connect/register";
    private const int MaxBody = 64 * 1024;

    public static IEndpointRouteBuilder MapAppRegistration(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup(Path).ExcludeFromDescription().DisableAntiforgery();
        group.MapPost("", RegisterAsync);
        group.MapGet("/{clientId}", ReadAsync);
        group.MapPut("/{clientId}", ReplaceAsync);
        group.MapDelete("/{clientId}", DeleteAsync);
        return app;
    }

    private static async Task<IResult> RegisterAsync(HttpContext context, AppRegistry registry, UserManager<ApplicationUser> users, TokenEndpointThrottle throttle)
    {
        var ct = context.RequestAborted;
        if (Blocked(context, throttle) is { } blocked)
        {
            return blocked;
        }
        // Every refusal before the token is spent counts against the address too: an anonymous flood of them is
        // blocked (429) after the token endpoint's limit instead of filling the record.
        if (Bearer(context) is not { } token)
        {
            await throttle.RecordFailureAsync(context.Connection.RemoteIpAddress);
            await registry.RecordRefusalAsync(null, "-", "app.register", "no initial access token", ct);
            return InvalidToken("An initial access token is required (make one on your developer page).");
        }
        var (request, malformed) = await ReadRegistrationAsync(context);
        if (request is null)
        {
            await throttle.RecordFailureAsync(context.Connection.RemoteIpAddress);
            await registry.RecordRefusalAsync(null, "-", "app.register", "malformed metadata", ct);
            return Error(StatusCodes.Status400BadRequest, "invalid_client_metadata", malformed!);
        }
        var (valid, errors) = AppRules.Validate(request);
        if (valid is null)
        {
            await throttle.RecordFailureAsync(context.Connection.RemoteIpAddress);
            await registry.RecordRefusalAsync(null, "-", "app.register", string.Join(", ", errors.Keys), ct);
            return MetadataError(errors);
        }
        // Used up only by a registration that can succeed; the check and the use are one statement.
        if (await registry.RedeemInitialAccessTokenAsync(token, ct) is not { } ownerId)
        {
            await throttle.RecordFailureAsync(context.Connection.RemoteIpAddress);
            await registry.RecordRefusalAsync(null, "-", "app.register", "unknown, used or expired initial access token", ct);
            return InvalidToken("The initial access token is unknown, used or expired.");
        }
        var owner = await users.FindByIdAsync(ownerId.ToString());
        if (owner is null || !owner.EmailConfirmed || (valid.Confidential && !owner.TwoFactorEnabled) || await users.IsLockedOutAsync(owner))
        {
            await registry.RecordRefusalAsync(ownerId, "-", "app.register", "the developer no longer qualifies", ct);
            return Error(StatusCodes.Status403Forbidden, "access_denied",
                "The token's developer needs a verified address, an account that is not locked, and two-factor sign-in for a confidential app.");
        }
        var (created, refused) = await registry.CreateAsync(ownerId, request, withRegistrationToken: true, ct);
        if (created is null)
        {
            return MetadataError(refused);
        }
        return TypedResults.Json(Document(context, created.App, created.ClientSecret, created.RegistrationAccessToken), statusCode: StatusCodes.Status201Created);
    }

    private static async Task<IResult> ReadAsync(string clientId, HttpContext context, AppRegistry registry, TokenEndpointThrottle throttle) =>
        await WithRegistrationTokenAsync(clientId, context, registry, throttle, "app.read", async () =>
            TypedResults.Json(Document(context, (await registry.ViewAsync(clientId, context.RequestAborted))!, null, null)));

    private static async Task<IResult> ReplaceAsync(string clientId, HttpContext context, AppRegistry registry, TokenEndpointThrottle throttle) =>
        await WithRegistrationTokenAsync(clientId, context, registry, throttle, "app.replace", async () =>
        {
            var ct = context.RequestAborted;
            var (request, malformed) = await ReadRegistrationAsync(context);
            if (request is null)
            {
                await registry.RecordRefusalAsync(null, clientId, "app.replace", "malformed metadata", ct);
                return Error(StatusCodes.Status400BadRequest, "invalid_client_metadata", malformed!);
            }
            var errors = await registry.UpdateAsync(null, clientId, request, ct);
            return errors is null
                ? TypedResults.Json(Document(context, (await registry.ViewAsync(clientId, ct))!, null, null))
                : MetadataError(errors);
        });

    private static async Task<IResult> DeleteAsync(string clientId, HttpContext context, AppRegistry registry, TokenEndpointThrottle throttle) =>
        await WithRegistrationTokenAsync(clientId, context, registry, throttle, "app.delete", async () =>
        {
            await registry.DeleteAsync(null, clientId, context.RequestAborted);
            return TypedResults.NoContent();
        });

    /// <summary>RFC 7592 §2: a wrong token, or another app's, is 401 — the same answer whether the client exists or not.</summary>
    private static async Task<IResult> WithRegistrationTokenAsync(string clientId, HttpContext context, AppRegistry registry, TokenEndpointThrottle throttle,
        string action, Func<Task<IResult>> then)
    {
        if (Blocked(context, throttle) is { } blocked)
        {
            return blocked;
        }
        if (Bearer(context) is not { } token || clientId.Length > ParameterBounds.ClientId
            || await registry.FindByRegistrationTokenAsync(clientId, token, context.RequestAborted) is not { } app)
        {
            await throttle.RecordFailureAsync(context.Connection.RemoteIpAddress);
            await registry.RecordRefusalAsync(null, clientId, action, "no valid registration access token", context.RequestAborted);
            return InvalidToken("The registration access token is missing or not this client's.");
        }
        // The token speaks for its developer: once their account is locked (or gone) it speaks for nobody.
        var users = context.RequestServices.GetRequiredService<UserManager<ApplicationUser>>();
        if (await users.FindByIdAsync(app.OwnerId.ToString()) is not { } owner || await users.IsLockedOutAsync(owner))
        {
            await registry.RecordRefusalAsync(null, clientId, action, "the developer's account is locked or gone", context.RequestAborted);
            return Error(StatusCodes.Status403Forbidden, "access_denied", "The app's developer account is locked.");
        }
        return await then();
    }

    private static JsonHttpResult<Dictionary<string, string>>? Blocked(HttpContext context, TokenEndpointThrottle throttle)
    {
        if (throttle.BlockedUntil(context.Connection.RemoteIpAddress) is not { } until)
        {
            return null;
        }
        var now = context.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow();
        var seconds = Math.Max(1, (long)Math.Ceiling((until - now).TotalSeconds));
        context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Error(StatusCodes.Status429TooManyRequests, "invalid_request", $"Too many failed requests from this address; retry in {seconds} seconds.");
    }

    private static string? Bearer(HttpContext context)
    {
        var header = context.Request.Headers.Authorization;
        return header.Count == 1 && header[0] is { Length: > 7 and < 200 } value && value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
            ? value[7..].Trim()
            : null;
    }

    private static async Task<(AppRegistration? Request, string? Problem)> ReadRegistrationAsync(HttpContext context)
    {
        if (!(context.Request.ContentType?.StartsWith("application/json", StringComparison.OrdinalIgnoreCase) ?? false))
        {
            return (null, "The metadata is a JSON document (Content-Type: application/json).");
        }
        if (context.Request.ContentLength > MaxBody)
        {
            return (null, $"The metadata is at most {MaxBody / 1024} KB.");
        }
        try
        {
            // Read no further than the limit (a chunked body has no length to check first).
            using var limited = new MemoryStream();
            var buffer = new byte[8192];
            int read;
            while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
            {
                if (limited.Length + read > MaxBody)
                {
                    return (null, $"The metadata is at most {MaxBody / 1024} KB.");
                }
                limited.Write(buffer, 0, read);
            }
            limited.Position = 0;
            var request = await JsonSerializer.DeserializeAsync<AppRegistration>(limited, cancellationToken: context.RequestAborted);
            return request is null ? (null, "The metadata is a JSON object.") : (request, null);
        }
        catch (JsonException)
        {
            return (null, "The metadata is not valid JSON of the registration's fields.");
        }
        catch (BadHttpRequestException)
        {
            return (null, "The request body could not be read.");
        }
    }

    private static JsonHttpResult<Dictionary<string, string>> MetadataError(Dictionary<string, string> errors)
    {
        var code = errors.Keys.Any(k => k is "redirect_uris" or "post_logout_redirect_uris") ? "invalid_redirect_uri" : "invalid_client_metadata";
        return Error(StatusCodes.Status400BadRequest, code, string.Join(" ", errors.Select(e => $"{e.Key}: {e.Value}")));
    }

    private static JsonHttpResult<Dictionary<string, string>> Error(int status, string error, string description) =>
        TypedResults.Json(new Dictionary<string, string> { ["error"] = error, ["error_description"] = description }, statusCode: status);

    private static InvalidTokenResult InvalidToken(string description) =>
        new InvalidTokenResult(Error(StatusCodes.Status401Unauthorized, "invalid_token", description));

    /// <summary>RFC 7591 §3.2.1 / RFC 7592 §3: the metadata, and what is issued with it.</summary>
    private static Dictionary<string, object?> Document(HttpContext context, AppView app, string? secret, string? registrationToken)
    {
        var registration = app.AsRegistration();
        var document = new Dictionary<string, object?>
        {
            ["client_id"] = app.ClientId,
            ["client_id_issued_at"] = app.CreatedAt?.ToUnixTimeSeconds(),
            ["client_name"] = registration.ClientName,
            ["application_type"] = registration.ApplicationType,
            ["token_endpoint_auth_method"] = registration.TokenEndpointAuthMethod,
            ["grant_types"] = registration.GrantTypes,
            ["redirect_uris"] = registration.RedirectUris,
            ["post_logout_redirect_uris"] = registration.PostLogoutRedirectUris,
            ["scope"] = registration.Scope,
            ["access_token_lifetime"] = registration.AccessTokenLifetime,
            ["refresh_token_lifetime"] = registration.RefreshTokenLifetime,
            ["registration_client_uri"] = IssuerOf(context) + Path.TrimStart('/') + "/" + Uri.EscapeDataString(app.ClientId),
        };
        if (secret is not null)
        {
            document["client_secret"] = secret;
            document["client_secret_expires_at"] = 0;
        }
        if (registrationToken is not null)
        {
            document["registration_access_token"] = registrationToken;
        }
        context.Response.Headers.CacheControl = "no-store";
        return document;
    }

    /// <summary>The configured issuer (required outside local development: the Host header is the caller's choice).</summary>
    private static string IssuerOf(HttpContext context) =>
        context.RequestServices.GetRequiredService<Microsoft.Extensions.Options.IOptions<OidcOptions>>().Value.Issuer is { Length: > 0 } issuer
            ? issuer.TrimEnd('/') + "/"
            : $"{context.Request.Scheme}://{context.Request.Host}{context.Request.PathBase}/";

    /// <summary>401 with <c>WWW-Authenticate: Bearer error="invalid_token"</c> (RFC 6750 §3).</summary>
    private sealed class InvalidTokenResult(IResult inner) : IResult
    {
        public Task ExecuteAsync(HttpContext httpContext)
        {
            httpContext.Response.Headers.WWWAuthenticate = "Bearer error=\"invalid_token\"";
            return inner.ExecuteAsync(httpContext);
        }
    }
}
