using ClippyBot.Contracts;
using System.Security.Claims;
using ClippyBot.Identity.Accounts;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server.AspNetCore;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Oidc;

/// <summary>The OpenID Connect endpoints whose decisions are ours (OpenIddict validates every request first).</summary>
internal static class OidcEndpoints
{
    private const string Scheme = OpenIddictServerAspNetCoreDefaults.AuthenticationScheme;

    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapMethods("/connect/authorize", [HttpMethods.Get, HttpMethods.Post], AuthorizeAsync).ExcludeFromDescription();
        app.MapPost("/connect/token", TokenAsync).ExcludeFromDescription().DisableAntiforgery();
        app.MapMethods("/connect/userinfo", [HttpMethods.Get, HttpMethods.Post], UserInfoAsync).ExcludeFromDescription().DisableAntiforgery();
        app.MapMethods("/connect/endsession", [HttpMethods.Get, HttpMethods.Post], (Delegate)EndSessionAsync).ExcludeFromDescription().DisableAntiforgery();
    }

    private static async Task<IResult> AuthorizeAsync(HttpContext context, [AsParameters] OidcServices services)
    {
        var request = context.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("Not an OpenID Connect request.");
        var login = await context.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        var user = login.Succeeded ? await services.Users.GetUserAsync(login.Principal!) : null;

        if (user is null || request.HasPromptValue(PromptValues.Login) || IsTooOld(login, request, services.Time))
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Forbid(Errors.LoginRequired, "The user is not signed in.");
            }
            var returnUrl = context.Request.PathBase + context.Request.Path + QueryWithoutPrompt(context.Request);
            return Results.Challenge(new AuthenticationProperties { RedirectUri = returnUrl }, [IdentityConstants.ApplicationScheme]);
        }

        // An unverified address may sign in only to first-party clients: a third party would trust an address nobody proved.
        var firstParty = await services.Apps.IsFirstPartyAsync(request.ClientId, context.RequestAborted);
        if (!user.EmailConfirmed && services.AccountSecurity.Value.RequireVerifiedEmailForThirdPartyClients && !firstParty)
        {
            if (request.HasPromptValue(PromptValues.None))
            {
                return Forbid(Errors.AccessDenied, "The account's email address is not verified.");
            }
            var returnUrl = context.Request.PathBase + context.Request.Path + QueryWithoutPrompt(context.Request);
            return Results.Redirect("/account/confirm-email-required?ReturnUrl=" + Uri.EscapeDataString(returnUrl));
        }

        // A third-party app gets what the person agreed to, asked once per app and again for more scopes or prompt=consent.
        if (!firstParty && await Apps.Consent.DecideAsync(context, request, user, services) is { } consentAnswer)
        {
            return consentAnswer;
        }

        var authTime = AuthenticationTime.Of(login.Principal) ?? services.Time.GetUtcNow();
        var principal = await CreateUserPrincipalAsync(user, request.GetScopes(), authTime, login.Principal!, services, request.ClientId);
        // Every login into a client is a session the user can see and end — started when the code is redeemed (an
        // abandoned code leaves nothing but an ad-hoc authorization that pruning removes). The code carries which browser
        // sign-in it came from, and whether it was a silent renewal, so renewals reuse that session.
        var identity = (ClaimsIdentity)principal.Identity!;
        if (BrowserSession.Of(login.Principal) is { } browser)
        {
            identity.SetClaim(BrowserSession.ClaimType, browser);
        }
        if (request.HasPromptValue(PromptValues.None))
        {
            identity.SetClaim(RenewalClaim, "true");
        }
        // The session is listed by the browser's device and address, not by the client's back channel that redeems the code.
        identity.SetClaim(Sessions.SessionStore.DeviceClaim, Sessions.SessionStore.Truncate(context.Request.Headers.UserAgent.ToString(), 256));
        identity.SetClaim(Sessions.SessionStore.AddressClaim, context.Connection.RemoteIpAddress?.ToString() ?? "");
        return SignIn(principal);
    }

    private static async Task<IResult> TokenAsync(HttpContext context, [AsParameters] OidcServices services)
    {
        var request = context.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("Not an OpenID Connect request.");

        if (request.IsClientCredentialsGrantType())
        {
            var identity = new ClaimsIdentity(Scheme, Claims.Name, Claims.Role);
            identity.SetClaim(Claims.Subject, request.ClientId);
            identity.SetScopes(request.GetScopes());
            identity.SetResources(OidcResources.ResourcesFor(request.GetScopes()));
            identity.SetDestinations(_ => [OpenIddictConstants.Destinations.AccessToken]);
            return Results.SignIn(new ClaimsPrincipal(identity), properties: null, authenticationScheme: Scheme);
        }

        if (request.IsAuthorizationCodeGrantType() || request.IsRefreshTokenGrantType())
        {
            var result = await context.AuthenticateAsync(Scheme);
            var previous = result.Principal ?? throw new InvalidOperationException("OpenIddict validated no principal.");
            var user = await services.Users.FindByIdAsync(previous.GetClaim(Claims.Subject) ?? "");
            // A changed security stamp (password change, reset, logout-everywhere) ends the login.
            if (user is null || previous.GetClaim(SecurityStampClaim) != await services.Users.GetSecurityStampAsync(user))
            {
                return Forbid(Errors.InvalidGrant, "The login is no longer valid.");
            }
            var authTime = DateTimeOffset.FromUnixTimeSeconds(long.Parse(previous.GetClaim(Claims.AuthenticationTime) ?? "0", System.Globalization.CultureInfo.InvariantCulture));
            if (services.Time.GetUtcNow() - authTime > services.Options.Value.RefreshTokenAbsoluteLifetime)
            {
                return Forbid(Errors.InvalidGrant, "The login has reached its maximum lifetime; sign in again.");
            }
            var sessionId = previous.GetClaim(Sessions.SessionStore.SessionIdClaim);
            if (request.IsAuthorizationCodeGrantType() && sessionId is null)
            {
                sessionId = (await services.Sessions.StartAsync((ClaimsIdentity)previous.Identity!, user.Id, request.ClientId!,
                    previous.GetClaim(BrowserSession.ClaimType), previous.GetClaim(RenewalClaim) == "true", context.RequestAborted)).ToString();
            }
            else if (!await services.Sessions.TouchAsync(sessionId, context.RequestAborted))
            {
                return Forbid(Errors.InvalidGrant, "The session has ended.");
            }
            var principal = await CreateUserPrincipalAsync(user, previous.GetScopes(), authTime, previous, services, request.ClientId);
            principal.SetClaim(Sessions.SessionStore.SessionIdClaim, sessionId);
            await services.Services.GetRequiredService<RevocationMarkers>().WaitUntilPastMarkerAsync(user.Id.ToString(), context.RequestAborted);
            return SignIn(principal);
        }

        return Forbid(Errors.UnsupportedGrantType, "The grant type is not supported.");
    }

    private static async Task<IResult> UserInfoAsync(HttpContext context, [AsParameters] OidcServices services)
    {
        var result = await context.AuthenticateAsync(Scheme);
        var user = result.Principal is null ? null : await services.Users.FindByIdAsync(result.Principal.GetClaim(Claims.Subject) ?? "");
        if (user is null)
        {
            return Results.Challenge(
                new AuthenticationProperties(new Dictionary<string, string?>
                {
                    [OpenIddictServerAspNetCoreConstants.Properties.Error] = Errors.InvalidToken,
                    [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = "The token does not belong to a user.",
                }),
                [Scheme]);
        }
        var principal = result.Principal!;
        var claims = new Dictionary<string, object>(StringComparer.Ordinal) { [Claims.Subject] = user.Id.ToString() };
        if (principal.HasScope(Scopes.Email))
        {
            claims[Claims.Email] = user.Email ?? "";
            claims[Claims.EmailVerified] = user.EmailConfirmed;
        }
        if (principal.HasScope(Scopes.Profile))
        {
            claims[Claims.Name] = user.UserName ?? "";
        }
        return Results.Ok(claims);
    }

    /// <summary>
    /// With a valid <c>id_token_hint</c> (OpenIddict has checked it) the client that holds the person's ID token asks,
    /// and the browser is signed out. Without one, anyone could sign a browser out by embedding this URL (logout CSRF), so
    /// the person is asked first: a page with a form posting back here with an anti-forgery token.
    /// </summary>
    private static async Task<IResult> EndSessionAsync(HttpContext context, Microsoft.AspNetCore.Antiforgery.IAntiforgery antiforgery)
    {
        var request = context.GetOpenIddictServerRequest();
        if (!await HintNamesSignedInUserAsync(context, request))
        {
            if (!HttpMethods.IsPost(context.Request.Method) || !await antiforgery.IsRequestValidAsync(context))
            {
                return ConfirmSignOut(context, antiforgery, request);
            }
        }
        await context.SignOutAsync(IdentityConstants.ApplicationScheme);
        // OpenIddict redirects only to a post_logout_redirect_uri registered for the client.
        return Results.SignOut(new AuthenticationProperties { RedirectUri = "/" }, [Scheme]);
    }

    /// <summary>
    /// True when a valid <c>id_token_hint</c> names the person signed in here (or nobody is signed in, so there is nothing
    /// to end): anyone can hold some valid ID token — their own — so a hint for another account proves nothing.
    /// </summary>
    private static async Task<bool> HintNamesSignedInUserAsync(HttpContext context, OpenIddictRequest? request)
    {
        if (string.IsNullOrEmpty(request?.IdTokenHint))
        {
            return false;
        }
        var hint = await context.AuthenticateAsync(Scheme);
        var signedIn = await context.AuthenticateAsync(IdentityConstants.ApplicationScheme);
        return !signedIn.Succeeded
            || (hint.Principal?.GetClaim(Claims.Subject) is { } subject && subject == signedIn.Principal?.GetClaim(Claims.Subject));
    }

    private static IResult ConfirmSignOut(HttpContext context, Microsoft.AspNetCore.Antiforgery.IAntiforgery antiforgery, OpenIddictRequest? request)
    {
        var tokens = antiforgery.GetAndStoreTokens(context);
        var html = System.Text.Encodings.Web.HtmlEncoder.Default;
        var fields = new System.Text.StringBuilder();
        foreach (var name in new[] { Parameters.ClientId, Parameters.PostLogoutRedirectUri, Parameters.State })
        {
            if ((string?)request?.GetParameter(name) is { Length: > 0 } value)
            {
                fields.Append(System.Globalization.CultureInfo.InvariantCulture, $"<input type=\"hidden\" name=\"{name}\" value=\"{html.Encode(value)}\" />");
            }
        }
        var page = $"""
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8"><title>Sign out - ClippyBot</title><link rel="stylesheet" href="/css/site.css"></head>
            <body><main><h1>Sign out of ClippyBot?</h1>
            <p>An application asked to sign you out of ClippyBot in this browser.</p>
            <form method="post" action="/connect/endsession">{fields}<input name="{html.Encode(tokens.FormFieldName)}" type="hidden" value="{html.Encode(tokens.RequestToken ?? "")}" />
            <button type="submit">Sign out</button></form></main></body></html>
            """;
        context.Response.Headers.CacheControl = "no-store";
        return Results.Content(page, "text/html; charset=utf-8");
    }

    internal const string SecurityStampClaim = "security_stamp";

    /// <summary>Inside a code only: it was issued for a <c>prompt=none</c> request (a silent renewal).</summary>
    private const string RenewalClaim = "renewal";

    private static async Task<ClaimsPrincipal> CreateUserPrincipalAsync(
        ApplicationUser user, IEnumerable<string> scopes, DateTimeOffset authTime, ClaimsPrincipal source, OidcServices services, string? clientId)
    {
        var identity = new ClaimsIdentity(Scheme, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, user.Id.ToString())
            .SetClaim(Claims.Email, user.Email)
            .SetClaim(Claims.EmailVerified, user.EmailConfirmed)
            .SetClaim(Claims.Name, user.UserName)
            .SetClaim(Claims.AuthenticationTime, authTime.ToUnixTimeSeconds())
            .SetClaim(SecurityStampClaim, await services.Users.GetSecurityStampAsync(user));
        // How the user signed in, so resource servers can demand MFA: "pwd" now, "mfa"/"otp" once 2FA lands.
        var amr = source.FindAll(Claims.AuthenticationMethodReference).Select(c => c.Value).ToList();
        if (amr.Count == 0)
        {
            amr.Add(source.FindFirst("amr")?.Value ?? "pwd");
        }
        // RFC 8176: amr is a JSON array even with one value.
        identity.AddClaim(new Claim(Claims.AuthenticationMethodReference,
            System.Text.Json.JsonSerializer.Serialize(amr.Distinct(StringComparer.Ordinal)), JsonClaimValueTypes.JsonArray));

        var scopeList = scopes.ToList();
        // Resource servers see platform administrators by role; re-evaluated whenever a token is issued or refreshed, and
        // only for a login that passed a second factor.
        // Only ClippyBot's own configured apps carry it: an app registered at run time (whatever a person allowed it, and
        // even if marked first-party) never acts with a platform administrator's power.
        if (scopeList.Contains(OidcResources.ApiScope, StringComparer.Ordinal) && amr.Contains("mfa")
            && services.Options.Value.Clients.Any(c => c.ClientId == clientId && c.FirstParty)
            && await services.Services.GetRequiredService<Administrators>().IsAdministratorAsync(user))
        {
            identity.AddClaim(new Claim(Claims.Role, ClippyBot.Contracts.PlatformRoles.Administrator));
        }
        // Registry reviewers likewise: a second factor, a configured first-party client, the registry scope.
        if (scopeList.Contains(ClippyBot.Contracts.ApiScopes.Registry, StringComparer.Ordinal) && amr.Contains("mfa")
            && services.Options.Value.Clients.Any(c => c.ClientId == clientId && c.FirstParty)
            && await services.Services.GetRequiredService<Administrators>().IsPluginReviewerAsync(user))
        {
            identity.AddClaim(new Claim(Claims.Role, ClippyBot.Contracts.PlatformRoles.PluginReviewer));
        }
        identity.SetScopes(scopeList);
        identity.SetResources(OidcResources.ResourcesFor(scopeList));
        return new ClaimsPrincipal(identity);
    }

    /// <summary>Decides where each claim goes only once every claim is there.</summary>
    private static IResult SignIn(ClaimsPrincipal principal)
    {
        var identity = (ClaimsIdentity)principal.Identity!;
        identity.SetDestinations(claim => DestinationsOf(claim, identity));
        return Results.SignIn(principal, properties: null, authenticationScheme: Scheme);
    }

    private static IEnumerable<string> DestinationsOf(Claim claim, ClaimsIdentity identity) => claim.Type switch
    {
        Claims.Subject or Claims.AuthenticationMethodReference or Claims.AuthenticationTime or Sessions.SessionStore.SessionIdClaim
            => [OpenIddictConstants.Destinations.AccessToken, OpenIddictConstants.Destinations.IdentityToken],
        Claims.Name when identity.HasScope(Scopes.Profile) => [OpenIddictConstants.Destinations.AccessToken, OpenIddictConstants.Destinations.IdentityToken],
        Claims.Email or Claims.EmailVerified when identity.HasScope(Scopes.Email) => [OpenIddictConstants.Destinations.AccessToken, OpenIddictConstants.Destinations.IdentityToken],
        Claims.Role => [OpenIddictConstants.Destinations.AccessToken],
        // The stamp stays inside OpenIddict's own (encrypted) codes and refresh tokens.
        _ => [],
    };

    /// <summary>max_age is measured from when the person last proved a credential, not from the session's last activity.</summary>
    private static bool IsTooOld(AuthenticateResult login, OpenIddictRequest request, TimeProvider time) =>
        request.MaxAge is { } maxAge && (AuthenticationTime.Of(login.Principal) is not { } at || time.GetUtcNow() - at > TimeSpan.FromSeconds(maxAge));

    /// <summary>
    /// The authorize request to come back to after signing in, without <c>prompt</c> and <c>max_age</c>: both were just
    /// satisfied, and keeping them would send the browser back to the sign-in page (max_age=0) for ever.
    /// </summary>
    private static string QueryWithoutPrompt(HttpRequest request)
    {
        var pairs = request.HasFormContentType
            ? request.Form.Where(p => p.Key is not (Parameters.Prompt or Parameters.MaxAge)).Select(p => (p.Key, p.Value.ToString()))
            : request.Query.Where(p => p.Key is not (Parameters.Prompt or Parameters.MaxAge)).Select(p => (p.Key, p.Value.ToString()));
        return QueryString.Create(pairs.Select(p => new KeyValuePair<string, string?>(p.Key, p.Item2))).ToString();
    }

    internal static IResult Forbid(string error, string description) => Results.Forbid(
        new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        }),
        [Scheme]);
}

/// <summary>Services of the user flows, resolved on first use: the client-credentials path touches none of them.</summary>
internal sealed class OidcServices(IServiceProvider services, TimeProvider time, IOptions<OidcOptions> options)
{
    public IServiceProvider Services { get; } = services;

    public UserManager<ApplicationUser> Users => field ??= Services.GetRequiredService<UserManager<ApplicationUser>>();

    public Sessions.SessionStore Sessions => field ??= Services.GetRequiredService<Sessions.SessionStore>();

    public TimeProvider Time { get; } = time;

    public IOptions<OidcOptions> Options { get; } = options;

    public IOptions<AccountSecurity.AccountSecurityOptions> AccountSecurity => field ??= Services.GetRequiredService<IOptions<AccountSecurity.AccountSecurityOptions>>();

    public Apps.AppRegistry Apps => field ??= Services.GetRequiredService<Apps.AppRegistry>();
}
