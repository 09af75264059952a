using ClippyBot.Email;

namespace ClippyBot.Identity.AccountSecurity;

public static class AccountSecurityExtensions
{
    /// <summary>Email verification, password reset, TOTP two-factor with recovery codes, the user's security log, account mail.</summary>
    public static IHostApplicationBuilder AddAccountSecurity(this IHostApplicationBuilder builder)
    {
        builder.AddEmail();
        // Account mail is durable (identitydb, sealed under a key derived from Oidc:KeyEncryptionKey).
        builder.AddDurableEmail<Data.IdentityDataContext>(sp =>
        {
            var oidc = sp.GetRequiredService<Microsoft.Extensions.Options.IOptions<Oidc.OidcOptions>>().Value;
            return new DurableEmailKey(
                new ClippyBot.Security.KeyProtector(Oidc.OidcOptions.DeriveKey(oidc.KeyEncryptionKey, "mail-outbox"), Oidc.OidcOptions.Scope),
                Oidc.OidcOptions.DeriveKey(oidc.ClientSecretHashKey, "mail-recipients"));
        });
        builder.Services.AddOptions<AccountSecurityOptions>().Bind(builder.Configuration.GetSection(AccountSecurityOptions.SectionName))
            .Validate(o => builder.Environment.IsLocal() || Uri.TryCreate(o.PublicBaseUrl, UriKind.Absolute, out var u) && u.Scheme == Uri.UriSchemeHttps,
                "AccountSecurity:PublicBaseUrl must be this service's public https origin: links in emails are built from it.")
            .Validate(o => o.PasswordResetLifetime > TimeSpan.Zero && o.PasswordResetLifetime <= TimeSpan.FromDays(7), "AccountSecurity:PasswordResetLifetime must be between 0 and 7 days.")
            .ValidateOnStart();
        builder.Services.AddHttpContextAccessor();
        builder.Services.AddSingleton<AccountSecrets>();
        builder.Services.AddScoped<AccountTokens>();
        builder.Services.AddScoped<SecurityLog>();
        builder.Services.AddScoped<TwoFactor>();
        builder.Services.AddScoped<AccountMail>();
        builder.Services.AddScoped<VerificationMail>();
        builder.Services.AddScoped<SecondFactorLogin>();
        return builder;
    }
}
