using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using NSec.Cryptography;

namespace ClippyBot.Identity.Crypto;

/// <summary>Argon2id cost parameters (RFC 9106). Defaults: OWASP's m=19 MiB, t=2, p=1.</summary>
public sealed record Argon2idParameters(int MemoryKiB = 19_456, int Iterations = 2, int Parallelism = 1)
{
    public const int Version = 19;

    public bool IsWeakerThan(Argon2idParameters other) =>
        MemoryKiB < other.MemoryKiB || Iterations < other.Iterations;
}

/// <summary>
/// Argon2id password hashes in the PHC string format (<c>$argon2id$v=19$m=…,t=…,p=1$salt$hash</c>, unpadded base64) that
/// the reference <c>argon2</c> tool and libsodium read and write. Passwords are hashed as UTF-8 bytes: NSec's string
/// overload would hash UTF-16, which no other implementation does.
/// </summary>
public static class Argon2id
{
    public const int SaltBytes = 16; // libsodium (and so NSec) requires exactly 16
    public const int HashBytes = 32;

    // Bounds for parameters read back from storage: a corrupted or planted hash must not make one login cost gigabytes.
    private const int MaxMemoryKiB = 1 << 20;
    private const int MaxIterations = 16;

    public static string Hash(string password, Argon2idParameters parameters)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentNullException.ThrowIfNull(parameters);
        Span<byte> salt = stackalloc byte[SaltBytes];
        RandomNumberGenerator.Fill(salt);
        var hash = Derive(password, salt, parameters, HashBytes);
        return Format(parameters, salt, hash);
    }

    /// <summary>Checks <paramref name="password"/> against a PHC string; malformed strings never verify.</summary>
    public static bool Verify(string phc, string password, out Argon2idParameters? parameters)
    {
        ArgumentNullException.ThrowIfNull(password);
        if (!TryParse(phc, out parameters, out var salt, out var expected))
        {
            return false;
        }
        var actual = Derive(password, salt, parameters!, expected.Length);
        return CryptographicOperations.FixedTimeEquals(actual, expected);
    }

    public static string Format(Argon2idParameters parameters, ReadOnlySpan<byte> salt, ReadOnlySpan<byte> hash)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return string.Create(CultureInfo.InvariantCulture,
            $"$argon2id$v={Argon2idParameters.Version}$m={parameters.MemoryKiB},t={parameters.Iterations},p={parameters.Parallelism}${B64(salt)}${B64(hash)}");
    }

    public static bool TryParse(string? phc, out Argon2idParameters? parameters, out byte[] salt, out byte[] hash)
    {
        parameters = null;
        salt = [];
        hash = [];
        if (string.IsNullOrEmpty(phc))
        {
            return false;
        }
        var parts = phc.Split('$');
        // "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
        if (parts.Length != 6 || parts[0].Length != 0 || parts[1] != "argon2id" || parts[2] != $"v={Argon2idParameters.Version}")
        {
            return false;
        }
        int m = 0, t = 0, p = 0;
        foreach (var pair in parts[3].Split(','))
        {
            var kv = pair.Split('=', 2);
            if (kv.Length != 2 || !int.TryParse(kv[1], NumberStyles.None, CultureInfo.InvariantCulture, out var value))
            {
                return false;
            }
            switch (kv[0])
            {
                case "m": m = value; break;
                case "t": t = value; break;
                case "p": p = value; break;
                default: return false;
            }
        }
        // NSec (libsodium) computes Argon2id with one lane only.
        if (m < 8 || m > MaxMemoryKiB || t < 1 || t > MaxIterations || p != 1)
        {
            return false;
        }
        if (!TryB64(parts[4], out salt) || salt.Length != SaltBytes || !TryB64(parts[5], out hash) || hash.Length is < 16 or > 64)
        {
            return false;
        }
        parameters = new Argon2idParameters(m, t, p);
        return true;
    }

    private static byte[] Derive(string password, ReadOnlySpan<byte> salt, Argon2idParameters parameters, int length)
    {
        var algorithm = PasswordBasedKeyDerivationAlgorithm.Argon2id(new Argon2Parameters
        {
            DegreeOfParallelism = parameters.Parallelism,
            MemorySize = parameters.MemoryKiB,
            NumberOfPasses = parameters.Iterations,
        });
        var utf8 = Encoding.UTF8.GetBytes(password);
        try
        {
            return algorithm.DeriveBytes(utf8, salt, length);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(utf8);
        }
    }

    private static string B64(ReadOnlySpan<byte> bytes) => Convert.ToBase64String(bytes).TrimEnd('=');

    private static bool TryB64(string text, out byte[] bytes)
    {
        bytes = [];
        if (text.Length == 0 || text.Contains('=', StringComparison.Ordinal))
        {
            return false;
        }
        var padded = text + new string('=', (4 - text.Length % 4) % 4);
        try
        {
            bytes = Convert.FromBase64String(padded);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }
}
