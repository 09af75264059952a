using System.Security.Cryptography;
using OtpNet;

namespace ClippyBot.Identity.Crypto;

/// <summary>
/// RFC 6238 time-based one-time passwords (SHA-1, 30-second steps, 6 digits — what every authenticator app speaks), via
/// Otp.NET. A code is accepted one step either side of now, and only if its step is later than the last accepted one, so
/// a code (or an earlier one) can never be used twice.
/// </summary>
public static class Totp
{
    public const int SecretBytes = 20; // 160 bits, RFC 4226 §4's recommendation
    public const int Digits = 6;
    public const int StepSeconds = 30;

    public static byte[] NewSecret() => RandomNumberGenerator.GetBytes(SecretBytes);

    /// <summary>The secret as authenticator apps take it when typed: RFC 4648 base32 without padding.</summary>
    public static string ToBase32(byte[] secret) => Base32Encoding.ToString(secret).TrimEnd('=');

    /// <summary>The <c>otpauth://</c> URI a QR code carries (Google Authenticator key-uri format).</summary>
    public static string KeyUri(byte[] secret, string issuer, string account) =>
        $"otpauth://totp/{Uri.EscapeDataString(issuer)}:{Uri.EscapeDataString(account)}?secret={ToBase32(secret)}&issuer={Uri.EscapeDataString(issuer)}&algorithm=SHA1&digits={Digits}&period={StepSeconds}";

    /// <summary>The accepted step, or null when the code is wrong, malformed, or not later than <paramref name="lastAcceptedStep"/>.</summary>
    public static long? Verify(byte[] secret, string? code, DateTimeOffset now, long lastAcceptedStep, int digits = Digits)
    {
        ArgumentNullException.ThrowIfNull(secret);
        var normalized = code?.Replace(" ", "", StringComparison.Ordinal).Replace("-", "", StringComparison.Ordinal);
        if (normalized is null || normalized.Length != digits || !normalized.All(char.IsAsciiDigit))
        {
            return null;
        }
        var totp = new OtpNet.Totp(secret, StepSeconds, OtpHashMode.Sha1, digits);
        // Otp.NET compares in constant time and reports which step matched.
        return totp.VerifyTotp(now.UtcDateTime, normalized, out var step, new VerificationWindow(previous: 1, future: 1)) && step > lastAcceptedStep
            ? step
            : null;
    }

    /// <summary>The code for <paramref name="at"/> (used by tests against RFC 6238's vectors and by nothing else).</summary>
    public static string Compute(byte[] secret, DateTimeOffset at, int digits = Digits, OtpHashMode mode = OtpHashMode.Sha1) =>
        new OtpNet.Totp(secret, StepSeconds, mode, digits).ComputeTotp(at.UtcDateTime);
}
