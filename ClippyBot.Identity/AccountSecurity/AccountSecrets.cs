using ClippyBot.Security;
using ClippyBot.Identity.Crypto;
using ClippyBot.Identity.Oidc;

namespace ClippyBot.Identity.AccountSecurity;

/// <summary>
/// Keys of account security, derived from the service's configured secrets (HKDF, one purpose each): a keyed hash for
/// emailed tokens and recovery codes (a database dump yields nothing to replay) and AES-256-GCM for TOTP secrets (which must
/// be read back, so they are encrypted, never stored in plaintext).
/// </summary>
public sealed class AccountSecrets(Microsoft.Extensions.Options.IOptions<OidcOptions> options)
{
    private const string TotpPurpose = "totp-secret";

    public SecretHasher Hasher { get; } = new(OidcOptions.DeriveKey(options.Value.ClientSecretHashKey, "account-tokens"));

    private KeyProtector Protector { get; } = new(OidcOptions.DeriveKey(options.Value.KeyEncryptionKey, "totp-secrets"), OidcOptions.Scope);

    public byte[] SealTotpSecret(byte[] secret, Guid userId) => Protector.Seal(secret, TotpPurpose, userId.ToString());

    public byte[] OpenTotpSecret(byte[] sealedSecret, Guid userId) => Protector.Open(sealedSecret, TotpPurpose, userId.ToString());
}
