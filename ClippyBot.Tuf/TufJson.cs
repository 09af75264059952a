using System.Globalization;
using System.Text.Json.Nodes;

namespace ClippyBot.Tuf;

/// <summary>Strict field readers: a missing or wrongly typed field is <see cref="TufFailure.Malformed"/>, never a default.</summary>
internal static class TufJson
{
    public static string? String(JsonObject obj, string name) =>
        obj[name] is JsonValue value && value.GetValueKind() == System.Text.Json.JsonValueKind.String ? value.GetValue<string>() : null;

    public static string RequiredString(JsonObject obj, string name, string what) =>
        String(obj, name) ?? throw new TufException(TufFailure.Malformed, $"{what}: \"{name}\" is missing or not a string.");

    public static long RequiredInteger(JsonObject obj, string name, string what, long minimum) =>
        CanonicalJson.TryInteger(obj[name], out var number) && number >= minimum
            ? number
            : throw new TufException(TufFailure.Malformed, $"{what}: \"{name}\" is missing or not an integer ≥ {minimum}.");

    public static JsonObject RequiredObject(JsonObject obj, string name, string what) =>
        obj[name] as JsonObject ?? throw new TufException(TufFailure.Malformed, $"{what}: \"{name}\" is missing or not an object.");

    public static DateTimeOffset Expires(JsonObject obj, string what)
    {
        var text = RequiredString(obj, "expires", what);
        return DateTimeOffset.TryParseExact(text, "yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture,
            DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var expires)
            ? expires
            : throw new TufException(TufFailure.Malformed, $"{what}: \"expires\" is not yyyy-MM-ddTHH:mm:ssZ.");
    }

    public static string FormatExpires(DateTimeOffset moment) =>
        moment.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}
