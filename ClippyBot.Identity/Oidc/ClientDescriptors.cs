using OpenIddict.Abstractions;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace ClippyBot.Identity.Oidc;

/// <summary>What a client may do, as OpenIddict permissions: one rule for configured and registered clients.</summary>
internal static class ClientDescriptors
{
    public static void SetPermissions(OpenIddictApplicationDescriptor descriptor, IEnumerable<string> grantTypes, IEnumerable<string> scopes, bool introspection)
    {
        descriptor.Permissions.Clear();
        descriptor.Requirements.Clear();
        var grants = grantTypes.ToList();
        foreach (var grant in grants)
        {
            descriptor.Permissions.Add(Permissions.Prefixes.GrantType + grant);
            if (grant == GrantTypes.AuthorizationCode)
            {
                descriptor.Permissions.Add(Permissions.Endpoints.Authorization);
                descriptor.Permissions.Add(Permissions.Endpoints.EndSession);
                descriptor.Permissions.Add(Permissions.ResponseTypes.Code);
                // PKCE for every client that uses the code flow, public or not.
                descriptor.Requirements.Add(Requirements.Features.ProofKeyForCodeExchange);
            }
        }
        if (grants.Count > 0)
        {
            descriptor.Permissions.Add(Permissions.Endpoints.Token);
            descriptor.Permissions.Add(Permissions.Endpoints.Revocation);
        }
        if (introspection)
        {
            descriptor.Permissions.Add(Permissions.Endpoints.Introspection);
        }
        foreach (var scope in scopes)
        {
            descriptor.Permissions.Add(Permissions.Prefixes.Scope + scope);
        }
    }
}
