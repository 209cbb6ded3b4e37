using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// A v2 JSON input's <c>"data"</c> read straight off the reader into the request's scratch, for
/// the common numeric dtypes: no JsonDocument, no element list. Nested arrays are flattened (the
/// shape comes from <c>"shape"</c>; the element count is checked against it). Other dtypes go
/// through <see cref="Smi.Sdk.MlosConvention.EncodeValues"/>.
/// </summary>
internal static unsafe class JsonNumbers
{
    public static bool Handles(SmiDtype dtype) => dtype is SmiDtype.Fp32 or SmiDtype.Fp64 or SmiDtype.Int32 or SmiDtype.Int64;

    /// <summary>The reader stands on the value; it is left on the value's last token.</summary>
    public static (nint Data, long Count, nuint Bytes) Read(ref Utf8JsonReader reader, SmiDtype dtype, scoped ReadOnlySpan<byte> name, KServeScratch scratch)
    {
        int size = SmiDtypes.ElementSize(dtype);
        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        int used = 0;
        long count = 0;
        try
        {
            int depth = 0;
            do
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.StartArray: depth++; break;
                    case JsonTokenType.EndArray: depth--; break;
                    case JsonTokenType.Number:
                        if (used + size > buffer.Length)
                        {
                            var bigger = ArrayPool<byte>.Shared.Rent(buffer.Length * 2);
                            buffer.AsSpan(0, used).CopyTo(bigger);
                            ArrayPool<byte>.Shared.Return(buffer);
                            buffer = bigger;
                        }
                        Write(ref reader, dtype, name, buffer.AsSpan(used, size));
                        used += size;
                        count++;
                        break;
                    default:
                        throw new MlosException(SmiStatus.InvalidParam,
                            $"input '{Encoding.UTF8.GetString(name)}': \"data\" of {SmiDtypes.Name(dtype)} must hold numbers, not {reader.TokenType}");
                }
            } while (depth > 0 && reader.Read());
            return ((nint)scratch.Data(buffer.AsSpan(0, used)), count, (nuint)used);
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    private static void Write(ref Utf8JsonReader reader, SmiDtype dtype, scoped ReadOnlySpan<byte> name, Span<byte> dst)
    {
        bool ok = dtype switch
        {
            SmiDtype.Fp32 => reader.TryGetSingle(out var f) && Put(dst, f),
            SmiDtype.Fp64 => reader.TryGetDouble(out var d) && Put(dst, d),
            SmiDtype.Int32 => reader.TryGetInt32(out var i) && Put(dst, i),
            _ => reader.TryGetInt64(out var l) && Put(dst, l),
        };
        if (!ok)
            throw new MlosException(SmiStatus.InvalidParam,
                $"input '{Encoding.UTF8.GetString(name)}': {Encoding.UTF8.GetString(reader.ValueSpan)} is not a {SmiDtypes.Name(dtype)} value");
    }

    private static bool Put(Span<byte> dst, float v) { BinaryPrimitives.WriteSingleLittleEndian(dst, v); return true; }
    private static bool Put(Span<byte> dst, double v) { BinaryPrimitives.WriteDoubleLittleEndian(dst, v); return true; }
    private static bool Put(Span<byte> dst, int v) { BinaryPrimitives.WriteInt32LittleEndian(dst, v); return true; }
    private static bool Put(Span<byte> dst, long v) { BinaryPrimitives.WriteInt64LittleEndian(dst, v); return true; }
}
