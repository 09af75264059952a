using System.Security.Claims;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace ClippyBot.ServiceDefaults.Authentication;

/// <summary>
/// After an operator rotates Identity's signing keys, tokens signed with the new key arrive before this service has
/// fetched it. JwtBearer only asks for the keys again and refuses the request; here the request that meets an unknown key
/// waits for one fresh fetch of Identity's discovery document and keys and is validated against them — so nobody's
/// request fails because of a rotation. Fetches are shared by concurrent requests, and a key id the last answer lacked
/// is asked for again only half a second later: forged key ids cannot turn this into a flood towards Identity.
/// </summary>
public sealed class SigningKeyCatchUp(TimeProvider time)
{
    /// <summary>The handler's own refresh interval (JwtBearerOptions.RefreshInterval).</summary>
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromSeconds(2);

    /// <summary>Fetches for a key the last answer lacked are at least this far apart.</summary>
    private static readonly TimeSpan Spacing = TimeSpan.FromMilliseconds(500);

    private readonly Lock _gate = new();
    private Task<OpenIdConnectConfiguration?>? _fetch;
    private DateTimeOffset _startedAt = DateTimeOffset.MinValue;

    /// <summary>Validates the request's token again with freshly fetched keys; true when it now passes (the context then succeeded).</summary>
    public async Task<bool> TryAgainAsync(AuthenticationFailedContext context, JsonWebTokenHandler handler)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(handler);
        var header = context.Request.Headers.Authorization.ToString();
        if (context.Exception is not SecurityTokenSignatureKeyNotFoundException || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        var token = header["Bearer ".Length..].Trim();
        string kid;
        try
        {
            kid = new JsonWebToken(token).Kid ?? "";
        }
        catch (ArgumentException)
        {
            return false;
        }
        OpenIdConnectConfiguration? configuration;
        try
        {
            configuration = await FetchAsync(context.Options, kid).WaitAsync(context.HttpContext.RequestAborted);
        }
        catch (OperationCanceledException)
        {
            return false; // the caller hung up
        }
        if (configuration is null || !configuration.SigningKeys.Any(k => k.KeyId == kid))
        {
            return false;
        }
        var rules = context.Options.TokenValidationParameters.Clone();
        rules.ValidIssuers = [configuration.Issuer];
        rules.IssuerSigningKeys = configuration.SigningKeys;
        var result = await handler.ValidateTokenAsync(token, rules);
        if (!result.IsValid)
        {
            return false;
        }
        context.Principal = new ClaimsPrincipal(result.ClaimsIdentity);
        context.Success();
        return true;
    }

    private Task<OpenIdConnectConfiguration?> FetchAsync(JwtBearerOptions options, string kid)
    {
        lock (_gate)
        {
            var now = time.GetUtcNow();
            // One fetch at a time; an answer that already has the key is used as it is; a key the last answer lacked is
            // asked for again only after the spacing, so forged key ids cost Identity at most two fetches a second.
            if (_fetch is not null && (!_fetch.IsCompleted || HasKey(_fetch, kid) || now - _startedAt < Spacing))
            {
                return _fetch;
            }
            _startedAt = now;
            _fetch = RetrieveAsync(options);
            // The handler's own configuration catches up too (for later requests, without this path).
            options.ConfigurationManager?.RequestRefresh();
            return _fetch;
        }
    }

    private static bool HasKey(Task<OpenIdConnectConfiguration?> fetch, string kid) =>
        fetch.IsCompletedSuccessfully && fetch.Result is { } configuration && configuration.SigningKeys.Any(k => k.KeyId == kid);

    private static async Task<OpenIdConnectConfiguration?> RetrieveAsync(JwtBearerOptions options)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var retriever = new HttpDocumentRetriever(options.Backchannel) { RequireHttps = options.RequireHttpsMetadata };
            return await OpenIdConnectConfigurationRetriever.GetAsync(options.MetadataAddress, retriever, timeout.Token);
        }
        catch (Exception e) when (e is IOException or HttpRequestException or OperationCanceledException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }
}
