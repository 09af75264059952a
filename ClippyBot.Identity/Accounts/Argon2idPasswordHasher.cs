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
/// <remarks>
/// At most one hash per core runs at a time: Argon2id is memory-hard, and more concurrent 19 MiB hashes than cores
/// only evict each other from the caches and multiply memory use under a login burst. Callers on the request path use
/// <see cref="VerifyHashedPasswordAsync"/>, which queues without holding a thread-pool thread, so requests that wait for
/// the database keep flowing while the cores hash.
/// </remarks>
public sealed class Argon2idPasswordHasher<TUser>(IOptions<PasswordHashingOptions> options) : IPasswordHasher<TUser> where TUser : class
{
    private static readonly SemaphoreSlim Cores = new(Environment.ProcessorCount, Environment.ProcessorCount);

    private readonly Argon2idParameters _parameters = options.Value.ToParameters();

    public string HashPassword(TUser user, string password)
    {
        Cores.Wait();
        try
        {
            return Argon2id.Hash(password, _parameters);
        }
        finally
        {
            Cores.Release();
        }
    }

    public PasswordVerificationResult VerifyHashedPassword(TUser user, string hashedPassword, string providedPassword)
    {
        Cores.Wait();
        try
        {
            return Verify(hashedPassword, providedPassword);
        }
        finally
        {
            Cores.Release();
        }
    }

    public async Task<PasswordVerificationResult> VerifyHashedPasswordAsync(string hashedPassword, string providedPassword, CancellationToken ct)
    {
        await Cores.WaitAsync(ct);
        try
        {
            return Verify(hashedPassword, providedPassword);
        }
        finally
        {
            Cores.Release();
        }
    }

    private PasswordVerificationResult Verify(string hashedPassword, string providedPassword)
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
