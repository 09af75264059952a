using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ClippyBot.Tuf;

/// <summary>
/// The canonical JSON TUF signs (the OLPC form securesystemslib implements): no whitespace, object keys sorted by code
/// point, strings escaping only <c>"</c> and <c>\</c> (everything else raw UTF-8), integers only.
/// </summary>
public static class CanonicalJson
{
    private static readonly System.Buffers.SearchValues<char> Digits = System.Buffers.SearchValues.Create("0123456789");

    // Strict: a lone surrogate is an error, never silently U+FFFD (two different strings must not encode alike).
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Duplicate keys are refused: two readers could otherwise see two different documents under one signature.</summary>
    public static readonly JsonDocumentOptions ParseOptions = new() { AllowDuplicateProperties = false, MaxDepth = 32 };

    public static byte[] Serialize(JsonNode? node)
    {
        using var buffer = new MemoryStream();
        Write(buffer, node);
        return buffer.ToArray();
    }

    /// <summary>Parses <paramref name="json"/> strictly; a malformed document or a duplicate key is a <see cref="TufException"/>.</summary>
    public static JsonNode Parse(ReadOnlySpan<byte> json, string what)
    {
        try
        {
            var node = JsonNode.Parse(json, documentOptions: ParseOptions) ?? throw new TufException(TufFailure.Malformed, $"{what} is null.");
            // Every name and string is read once here: a lone surrogate or invalid UTF-8 would otherwise throw later, from
            // wherever it is first read (a signature check included), as something other than "malformed".
            Serialize(node);
            return node;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or ArgumentException or FormatException or DecoderFallbackException)
        {
            throw new TufException(TufFailure.Malformed, $"{what} is not valid JSON: {e.GetType().Name}");
        }
    }

    private static void Write(Stream output, JsonNode? node)
    {
        switch (node)
        {
            case null:
                output.Write("null"u8);
                break;
            case JsonObject obj:
                output.WriteByte((byte)'{');
                var first = true;
                foreach (var (key, value) in obj.Select(p => (Key: Utf8.GetBytes(p.Key), p.Value)).OrderBy(p => p.Key, ByteOrder.Instance))
                {
                    if (!first)
                    {
                        output.WriteByte((byte)',');
                    }
                    first = false;
                    WriteString(output, key);
                    output.WriteByte((byte)':');
                    Write(output, value);
                }
                output.WriteByte((byte)'}');
                break;
            case JsonArray array:
                output.WriteByte((byte)'[');
                for (var i = 0; i < array.Count; i++)
                {
                    if (i > 0)
                    {
                        output.WriteByte((byte)',');
                    }
                    Write(output, array[i]);
                }
                output.WriteByte((byte)']');
                break;
            case JsonValue value:
                WriteValue(output, value);
                break;
            default:
                throw new TufException(TufFailure.Malformed, $"Unexpected JSON node {node.GetType().Name}.");
        }
    }

    private static void WriteValue(Stream output, JsonValue value)
    {
        switch (value.GetValueKind())
        {
            case JsonValueKind.String:
                WriteString(output, Utf8.GetBytes(value.GetValue<string>()));
                break;
            case JsonValueKind.True:
                output.Write("true"u8);
                break;
            case JsonValueKind.False:
                output.Write("false"u8);
                break;
            case JsonValueKind.Null:
                output.Write("null"u8);
                break;
            case JsonValueKind.Number when TryInteger(value, out var integer):
                output.Write(Encoding.ASCII.GetBytes(integer.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                break;
            default:
                throw new TufException(TufFailure.Malformed, "Canonical JSON holds integers only.");
        }
    }

    /// <summary>A JSON number written as an integer (parsed "12" or a built int/long; never "1.0" or "1e3").</summary>
    internal static bool TryInteger(JsonNode? node, out long integer)
    {
        integer = 0;
        if (node is not JsonValue value || value.GetValueKind() != JsonValueKind.Number)
        {
            return false;
        }
        var text = value.ToJsonString();
        return !text.AsSpan().TrimStart('-').ContainsAnyExcept(Digits)
            && long.TryParse(text, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out integer);
    }

    private static void WriteString(Stream output, byte[] utf8)
    {
        output.WriteByte((byte)'"');
        foreach (var b in utf8)
        {
            if (b is (byte)'"' or (byte)'\\')
            {
                output.WriteByte((byte)'\\');
            }
            output.WriteByte(b);
        }
        output.WriteByte((byte)'"');
    }

    /// <summary>UTF-8 byte order is code point order.</summary>
    private sealed class ByteOrder : IComparer<byte[]>
    {
        public static readonly ByteOrder Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
