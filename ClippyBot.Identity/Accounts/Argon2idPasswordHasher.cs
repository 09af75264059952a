using ClippyBot.Identity.Crypto;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace ClippyBot.Identity.Accounts;

/// <summary>Configuration section <c>PasswordHashing</c>; defaults are OWASP's Argon2id recommendation.</summary>
public sealed class PasswordHashingOptions
{
    public const string SectionName = "PasswordHashing";

    public int MemoryKiB { get; set; } = 19_456;

    public int Iterations { get; set; } = 2;

    public Argon2idParameters ToParameters() => new(MemoryKiB, Iterations, 1);
}

/// <summary>
/// ASP.NET Core Identity's hasher backed by Argon2id. Hashes made with weaker parameters than configured still verify
/// and report <see cref="PasswordVerificationResult.SuccessRehashNeeded"/>, so Identity upgrades them at the next login.
/// </summary>
public sealed class Argon2idPasswordHasher<TUser>(IOptions<PasswordHashingOptions> options) : IPasswordHasher<TUser> where TUser : class
{
    private readonly Argon2idParameters _parameters = options.Value.ToParameters();

    public string HashPassword(TUser user, string password) => Argon2id.Hash(password, _parameters);

    public PasswordVerificationResult VerifyHashedPassword(TUser user, string hashedPassword, string providedPassword)
    {
        if (!Argon2id.Verify(hashedPassword, providedPassword, out var stored))
        {
            return PasswordVerificationResult.Failed;
        }
        return stored!.IsWeakerThan(_parameters)
            ? PasswordVerificationResult.SuccessRehashNeeded
            : PasswordVerificationResult.Success;
    }
}
