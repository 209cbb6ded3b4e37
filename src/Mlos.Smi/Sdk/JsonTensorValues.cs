using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// A JSON tensor value (a scalar or nested arrays) decoded in one pass straight into native
/// memory: no document, no list of elements, nothing on the managed heap in proportion to the
/// input. The one rule for JSON tensor values, shared by the MLOS convention and the server's
/// KServe JSON inputs.
/// </summary>
public static class JsonTensorValues
{
    /// <summary>
    /// Appends the value the reader stands on to <paramref name="destination"/> as
    /// <paramref name="dtype"/> elements (see <see cref="JsonTensorElement"/> for the layout); the
    /// values start at the destination's length before the call. The reader is left on the
    /// value's last token. Ragged arrays, values the dtype does not take and text that is not
    /// Unicode throw <see cref="SmiStatus.InvalidParam"/>, naming <paramref name="name"/>
    /// (UTF-8).
    /// </summary>
    public static JsonTensorExtent Read(ref Utf8JsonReader reader, SmiDtype dtype, scoped ReadOnlySpan<byte> name, NativeBuffer destination)
    {
        if (dtype != SmiDtype.Bytes && SmiDtypes.ElementSize(dtype) == 0)
            throw new SmiException(SmiStatus.NotSupported, $"input '{JsonText.Name(name)}' has dtype {SmiDtypes.Name(dtype)}, which JSON cannot carry");
        if (reader.TokenType is JsonTokenType.None or JsonTokenType.PropertyName or JsonTokenType.EndArray or JsonTokenType.EndObject)
            throw new ArgumentException($"the reader must stand on a value, not on {reader.TokenType}", nameof(reader));

        var extent = new JsonTensorExtent();
        // A level's length is known once its first array closes; until then it is -1.
        Span<long> dims = extent.Shape;
        dims.Fill(-1);
        Span<long> counts = stackalloc long[SmiVersion.MaxDims];
        nuint start = destination.Length;
        int depth = 0;
        // The rank is set by the first scalar or the first empty array: every value before either
        // lies on the first-element path, so that is the only nesting seen so far.
        int rank = -1;
        do
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartArray:
                    if (rank >= 0 && depth >= rank) throw Ragged(name);
                    if (depth == SmiVersion.MaxDims)
                        throw new SmiException(SmiStatus.InvalidParam, $"input '{JsonText.Name(name)}' has more than {SmiVersion.MaxDims} dimensions");
                    if (depth > 0) CountElement(counts, dims, depth - 1, name);
                    counts[depth++] = 0;
                    break;
                case JsonTokenType.EndArray:
                    depth--;
                    if (rank < 0) rank = depth + 1;
                    if (dims[depth] < 0) dims[depth] = counts[depth];
                    else if (counts[depth] != dims[depth]) throw Ragged(name);
                    break;
                default:
                    if (rank < 0) rank = depth;
                    else if (depth != rank) throw Ragged(name);
                    if (depth > 0) CountElement(counts, dims, depth - 1, name);
                    JsonTensorElement.Append(ref reader, dtype, name, destination);
                    extent.Count++;
                    break;
            }
        } while (depth > 0 && reader.Read());
        if (depth > 0)
            throw new SmiException(SmiStatus.InvalidParam, $"input '{JsonText.Name(name)}' ends before its arrays close");
        extent.Rank = rank;
        extent.ByteSize = destination.Length - start;
        return extent;
    }

    /// <summary>
    /// The dtype a value implies where the model declares none: strings BYTES, booleans BOOL,
    /// numbers INT64 if all are integers, else FP32 (also for an empty array). Takes the reader
    /// by value: the scan reads a copy, so the caller's reader still stands on the value.
    /// </summary>
    public static SmiDtype Guess(Utf8JsonReader reader)
    {
        bool first = true;
        int depth = 0;
        do
        {
            switch (reader.TokenType)
            {
                case JsonTokenType.StartArray: depth++; break;
                case JsonTokenType.EndArray: depth--; break;
                case JsonTokenType.String when first: return SmiDtype.Bytes;
                case JsonTokenType.True or JsonTokenType.False when first: return SmiDtype.Bool;
                case JsonTokenType.Number when reader.TryGetInt64(out _): first = false; break;
                default: return SmiDtype.Fp32;
            }
        } while (depth > 0 && reader.Read());
        return first ? SmiDtype.Fp32 : SmiDtype.Int64;
    }

    private static void CountElement(Span<long> counts, ReadOnlySpan<long> dims, int level, scoped ReadOnlySpan<byte> name)
    {
        // Checked as it goes, so a ragged array fails at its first extra element.
        if (++counts[level] > dims[level] && dims[level] >= 0) throw Ragged(name);
    }

    private static SmiException Ragged(scoped ReadOnlySpan<byte> name) =>
        new(SmiStatus.InvalidParam, $"input '{JsonText.Name(name)}' is not a rectangular array");
}
