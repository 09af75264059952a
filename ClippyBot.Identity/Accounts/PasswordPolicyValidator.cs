using System.Globalization;
using System.Reflection;
using System.Text;
using Microsoft.AspNetCore.Identity;

namespace ClippyBot.Identity.Accounts;

/// <summary>
/// ASVS 5.0 §6.2: at least 12 characters, at least 64 allowed (we allow 128), no composition rules, any Unicode, and
/// not one of 30,000 common passwords (zxcvbn's list; see common-passwords.LICENSE.txt). Length counts Unicode
/// characters (text elements), not UTF-16 units, so "ä" or an emoji counts once.
/// </summary>
public sealed class PasswordPolicyValidator : IPasswordValidator<ApplicationUser>
{
    public const int MinimumLength = 12;
    public const int MaximumLength = 128;

    private static readonly Lazy<HashSet<string>> CommonPasswords = new(LoadCommonPasswords);

    public Task<IdentityResult> ValidateAsync(UserManager<ApplicationUser> manager, ApplicationUser user, string? password)
    {
        if (string.IsNullOrEmpty(password))
        {
            return Task.FromResult(IdentityResult.Failed(Error("PasswordRequired", "Enter a password.")));
        }
        var length = new StringInfo(password.Normalize(NormalizationForm.FormC)).LengthInTextElements;
        if (length < MinimumLength)
        {
            return Task.FromResult(IdentityResult.Failed(Error("PasswordTooShort", $"Use at least {MinimumLength} characters.")));
        }
        if (length > MaximumLength)
        {
            return Task.FromResult(IdentityResult.Failed(Error("PasswordTooLong", $"Use at most {MaximumLength} characters.")));
        }
        if (IsCommon(password))
        {
            return Task.FromResult(IdentityResult.Failed(Error("PasswordCommon", "This password is too common; choose another.")));
        }
        return Task.FromResult(IdentityResult.Success);
    }

    public static bool IsCommon(string password) =>
        CommonPasswords.Value.Contains(password.Normalize(NormalizationForm.FormKC).ToLowerInvariant());

    private static IdentityError Error(string code, string description) => new() { Code = code, Description = description };

    private static HashSet<string> LoadCommonPasswords()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("common-passwords.txt")
            ?? throw new InvalidOperationException("The common-password list is missing from the assembly.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var set = new HashSet<string>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 0)
            {
                set.Add(line.Normalize(NormalizationForm.FormKC).ToLowerInvariant());
            }
        }
        return set;
    }
}
