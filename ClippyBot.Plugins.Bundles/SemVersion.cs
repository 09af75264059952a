using System.Globalization;
using System.Text.RegularExpressions;

namespace ClippyBot.Plugins.Bundles;

/// <summary>SemVer 2.0 versions with its precedence rules (build metadata ignored), for "strictly newer" on updates.</summary>
public sealed partial record SemVersion(int Major, int Minor, int Patch, string PreRelease) : IComparable<SemVersion>
{
    public static bool TryParse(string text, out SemVersion version)
    {
        var match = Pattern().Match(text ?? "");
        if (!match.Success
            || !int.TryParse(match.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var major)
            || !int.TryParse(match.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var minor)
            || !int.TryParse(match.Groups[3].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var patch))
        {
            version = new SemVersion(0, 0, 0, "");
            return false;
        }
        version = new SemVersion(major, minor, patch, match.Groups[4].Value);
        return true;
    }

    public static SemVersion Parse(string text) =>
        TryParse(text, out var version) ? version : throw new FormatException($"'{text}' is not a SemVer 2.0 version.");

    public int CompareTo(SemVersion? other)
    {
        if (other is null)
        {
            return 1;
        }
        var core = (Major, Minor, Patch).CompareTo((other.Major, other.Minor, other.Patch));
        if (core != 0)
        {
            return core;
        }
        // A pre-release is lower than its release; pre-release identifiers compare numerically or lexically, field by field.
        if (PreRelease.Length == 0 || other.PreRelease.Length == 0)
        {
            return (PreRelease.Length == 0, other.PreRelease.Length == 0) switch
            {
                (true, true) => 0,
                (true, false) => 1,
                _ => -1,
            };
        }
        var mine = PreRelease.Split('.');
        var theirs = other.PreRelease.Split('.');
        for (var i = 0; i < Math.Min(mine.Length, theirs.Length); i++)
        {
            var a = long.TryParse(mine[i], NumberStyles.None, CultureInfo.InvariantCulture, out var na);
            var b = long.TryParse(theirs[i], NumberStyles.None, CultureInfo.InvariantCulture, out var nb);
            var c = (a, b) switch
            {
                (true, true) => na.CompareTo(nb),
                (true, false) => -1,
                (false, true) => 1,
                _ => string.CompareOrdinal(mine[i], theirs[i]),
            };
            if (c != 0)
            {
                return c;
            }
        }
        return mine.Length.CompareTo(theirs.Length);
    }

    public static bool operator >(SemVersion a, SemVersion b) => a.CompareTo(b) > 0;

    public static bool operator <(SemVersion a, SemVersion b) => a.CompareTo(b) < 0;

    public static bool operator >=(SemVersion a, SemVersion b) => a.CompareTo(b) >= 0;

    public static bool operator <=(SemVersion a, SemVersion b) => a.CompareTo(b) <= 0;

    public override string ToString() => PreRelease.Length == 0 ? $"{Major}.{Minor}.{Patch}" : $"{Major}.{Minor}.{Patch}-{PreRelease}";

    [GeneratedRegex(@"^(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})\.(0|[1-9]\d{0,8})(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")]
    private static partial Regex Pattern();
}
