using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Mlos.Smi.Sdk;

/// <summary>JSON string and token text as the convention reads it: UTF-8, never a managed string on the way.</summary>
internal static class JsonText
{
    /// <summary>An upper bound on the unescaped UTF-8 length of the string token the reader stands on.</summary>
    public static int MaxLength(ref Utf8JsonReader reader) =>
        reader.HasValueSequence ? checked((int)reader.ValueSequence.Length) : reader.ValueSpan.Length;

    /// <summary>
    /// Unescapes the string token into <paramref name="destination"/> (at least
    /// <see cref="MaxLength"/> bytes); false when its text is not Unicode (invalid UTF-8, a lone
    /// surrogate escape), which the reader reports as an InvalidOperationException: a fault of
    /// the request, not of the code.
    /// </summary>
    public static bool TryCopyUtf8(ref Utf8JsonReader reader, Span<byte> destination, out int written)
    {
        try
        {
            written = reader.CopyString(destination);
            return true;
        }
        catch (InvalidOperationException)
        {
            written = 0;
            return false;
        }
    }

    private const int ShownBytes = 64;

    /// <summary>The token as it appears in the request, cut short, for error messages.</summary>
    public static string Shown(ref Utf8JsonReader reader)
    {
        if (reader.TokenType is JsonTokenType.StartObject) return "{…}";
        if (reader.TokenType is JsonTokenType.StartArray) return "[…]";
        ReadOnlySpan<byte> raw = reader.HasValueSequence
            ? reader.ValueSequence.Slice(0, Math.Min(reader.ValueSequence.Length, ShownBytes + 1)).ToArray()
            : reader.ValueSpan[..Math.Min(reader.ValueSpan.Length, ShownBytes + 1)];
        var text = raw.Length > ShownBytes ? Encoding.UTF8.GetString(raw[..ShownBytes]) + "…" : Encoding.UTF8.GetString(raw);
        return reader.TokenType is JsonTokenType.String ? $"\"{text}\"" : text;
    }

    /// <summary>A UTF-8 name for an error message.</summary>
    public static string Name(scoped ReadOnlySpan<byte> utf8) => Encoding.UTF8.GetString(utf8);
}
