namespace ClippyBot.Identity.Oidc;

/// <summary>
/// A server key as stored: the private part only ever as AES-256-GCM ciphertext under the key-encryption key.
/// Lifecycle by timestamps: published from <see cref="PublishedAt"/>, signs from <see cref="ActivatesAt"/> until
/// <see cref="RetiresAt"/>, stays published (so tokens it signed still validate) until <see cref="ExpiresAt"/>.
/// </summary>
public sealed class SigningKeyEntity
{
    public required string Id { get; set; }

    /// <summary><c>sig</c> (ES256 signing key) or <c>enc</c> (AES-256 key OpenIddict encrypts codes and refresh tokens with).</summary>
    public required string Use { get; set; }

    public required string Algorithm { get; set; }

    public required byte[] ProtectedKey { get; set; }

    public DateTimeOffset PublishedAt { get; set; }

    public DateTimeOffset ActivatesAt { get; set; }

    public DateTimeOffset RetiresAt { get; set; }

    public DateTimeOffset ExpiresAt { get; set; }
}
