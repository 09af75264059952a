using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.Accounts;

/// <summary>Identity's user manager, verifying passwords through the hasher's asynchronous per-core queue.</summary>
public sealed class ClippyUserManager(
    IUserStore<ApplicationUser> store,
    IOptions<IdentityOptions> optionsAccessor,
    IPasswordHasher<ApplicationUser> passwordHasher,
    IEnumerable<IUserValidator<ApplicationUser>> userValidators,
    IEnumerable<IPasswordValidator<ApplicationUser>> passwordValidators,
    ILookupNormalizer keyNormalizer,
    IdentityErrorDescriber errors,
    IServiceProvider services,
    ILogger<UserManager<ApplicationUser>> logger)
    : UserManager<ApplicationUser>(store, optionsAccessor, passwordHasher, userValidators, passwordValidators, keyNormalizer, errors, services, logger)
{
    protected override async Task<PasswordVerificationResult> VerifyPasswordAsync(IUserPasswordStore<ApplicationUser> store, ApplicationUser user, string password)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (PasswordHasher is not Argon2idPasswordHasher<ApplicationUser> argon2)
        {
            return await base.VerifyPasswordAsync(store, user, password);
        }
        var hash = await store.GetPasswordHashAsync(user, CancellationToken);
        return hash is null
            ? PasswordVerificationResult.Failed
            : await argon2.VerifyHashedPasswordAsync(hash, password, CancellationToken);
    }
}
