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
/// request fails because of a rotation. Fetches are shared by concurrent requests and happen at most every
/// <see cref="MinimumInterval"/>: forged key ids cannot turn this into a flood towards Identity, nor hold requests long.
/// </summary>
public sealed class SigningKeyCatchUp(TimeProvider time)
{
    public static readonly TimeSpan MinimumInterval = TimeSpan.FromSeconds(2);

    private readonly Lock _gate = new();
    private Task<OpenIdConnectConfiguration?>? _fetch;
    private DateTimeOffset _startedAt = DateTimeOffset.MinValue;

    /// <summary>Validates the request's token again with freshly fetched keys; true when it now passes (the context then succeeded).</summary>
    public async Task<bool> TryAgainAsync(AuthenticationFailedContext context, JsonWebTokenHandler handler)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(handler);
        var header = context.Request.Headers.Authorization.ToString();
        if (context.Exception is not SecurityTokenSignatureKeyNotFoundException || !header.StartsWith("Bearer ", StringComparison.Ordinal))
        {
            return false;
        }
        var configuration = await FetchAsync(context.Options, context.HttpContext.RequestAborted);
        if (configuration is null)
        {
            return false;
        }
        var rules = context.Options.TokenValidationParameters.Clone();
        rules.ValidIssuers = [configuration.Issuer];
        rules.IssuerSigningKeys = configuration.SigningKeys;
        var result = await handler.ValidateTokenAsync(header["Bearer ".Length..].Trim(), rules);
        if (!result.IsValid)
        {
            return false;
        }
        context.Principal = new ClaimsPrincipal(result.ClaimsIdentity);
        context.Success();
        return true;
    }

    private Task<OpenIdConnectConfiguration?> FetchAsync(JwtBearerOptions options, CancellationToken ct)
    {
        lock (_gate)
        {
            var now = time.GetUtcNow();
            // One fetch at a time, and none within the interval of the last: a key id Identity does not publish is refused
            // against the keys fetched a moment ago.
            if (_fetch is not null && (!_fetch.IsCompleted || now - _startedAt < MinimumInterval))
            {
                return _fetch.WaitAsync(ct);
            }
            _startedAt = now;
            _fetch = RetrieveAsync(options);
            // The handler's own configuration catches up too (for later requests, without this path).
            options.ConfigurationManager?.RequestRefresh();
            return _fetch.WaitAsync(ct);
        }
    }

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
