using OpenIddict.Abstractions;
using OpenIddict.Server;
using static OpenIddict.Abstractions.OpenIddictConstants;
using static OpenIddict.Server.OpenIddictServerEvents;

namespace ClippyBot.Identity.Oidc;

/// <summary>
/// What gets a database row. Rows exist so a token can be revoked or its reuse detected: authorization codes,
/// refresh tokens and users' access tokens (ending a session makes them inactive at introspection). A
/// client-credentials access token belongs to no session and is never refreshed, and an ID token is only ever read by
/// its client — neither needs a row, and writing one per token would make the database the bottleneck of issuance.
/// </summary>
internal sealed class TokenStoragePolicy : IOpenIddictServerHandler<GenerateTokenContext>
{
    public static void Register(OpenIddictServerBuilder server) =>
        server.AddEventHandler<GenerateTokenContext>(h => h.UseSingletonHandler<TokenStoragePolicy>()
            .SetOrder(OpenIddictServerHandlers.Protection.CreateTokenEntry.Descriptor.Order - 1));

    public ValueTask HandleAsync(GenerateTokenContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (context.TokenType == TokenTypeIdentifiers.IdentityToken
            || (context.TokenType == TokenTypeIdentifiers.AccessToken && context.Request?.IsClientCredentialsGrantType() == true))
        {
            context.CreateTokenEntry = false;
        }
        return default;
    }
}
