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

    /// <summary>Checks a new password against the policy without changing anything (so a reset token is spent only on success).</summary>
    public Task<IdentityResult> ValidateNewPasswordAsync(ApplicationUser user, string password) => ValidatePasswordAsync(user, password);

    /// <summary>
    /// Sets a new password in one update (hash and security stamp together), for a reset proven by an emailed token —
    /// unlike remove-then-add, a failure can never leave the account without a password.
    /// </summary>
    public async Task<IdentityResult> ReplacePasswordAsync(ApplicationUser user, string newPassword)
    {
        ArgumentNullException.ThrowIfNull(user);
        var result = await UpdatePasswordHash(user, newPassword, validatePassword: true);
        return result.Succeeded ? await UpdateUserAsync(user) : result;
    }
}
