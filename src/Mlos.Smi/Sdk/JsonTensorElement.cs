using System.Buffers.Binary;
using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// One JSON scalar as one tensor element: which JSON values each dtype takes, and the element's
/// bytes (little-endian; BYTES in KServe's layout, a uint32 length then the UTF-8 text).
/// </summary>
internal static unsafe class JsonTensorElement
{
    /// <summary>Appends the element the reader stands on to <paramref name="destination"/>.</summary>
    public static void Append(ref Utf8JsonReader reader, SmiDtype dtype, scoped ReadOnlySpan<byte> name, NativeBuffer destination)
    {
        if (dtype == SmiDtype.Bytes)
        {
            AppendString(ref reader, name, destination);
            return;
        }
        int size = SmiDtypes.ElementSize(dtype);
        Write(ref reader, dtype, name, new Span<byte>(destination.Reserve((nuint)size), size));
        destination.Advance((nuint)size);
    }

    private static void AppendString(ref Utf8JsonReader reader, scoped ReadOnlySpan<byte> name, NativeBuffer destination)
    {
        if (reader.TokenType != JsonTokenType.String)
            throw new SmiException(SmiStatus.InvalidParam, $"input '{JsonText.Name(name)}' is BYTES: its elements must be strings, not {JsonText.Shown(ref reader)}");
        int room = JsonText.MaxLength(ref reader);
        byte* at = destination.Reserve(sizeof(uint) + (nuint)room);
        if (!JsonText.TryCopyUtf8(ref reader, new Span<byte>(at + sizeof(uint), room), out int length))
            throw new SmiException(SmiStatus.InvalidParam,
                $"input '{JsonText.Name(name)}' (BYTES) holds a string that is not valid Unicode (invalid UTF-8 or a lone surrogate escape): {JsonText.Shown(ref reader)}");
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(at, sizeof(uint)), (uint)length);
        destination.Advance(sizeof(uint) + (nuint)length);
    }

    private static void Write(ref Utf8JsonReader reader, SmiDtype dtype, scoped ReadOnlySpan<byte> name, Span<byte> dst)
    {
        if (dtype == SmiDtype.Bool)
        {
            dst[0] = reader.TokenType switch
            {
                JsonTokenType.True => 1,
                JsonTokenType.False => 0,
                JsonTokenType.Number when reader.TryGetInt64(out var b) && b is 0 or 1 => (byte)b,
                _ => throw NotA(ref reader, name, dtype, "true, false, 0 or 1"),
            };
            return;
        }
        if (reader.TokenType != JsonTokenType.Number) throw NotA(ref reader, name, dtype, "a number");
        switch (dtype)
        {
            case SmiDtype.Fp32 when reader.TryGetSingle(out var f): BinaryPrimitives.WriteSingleLittleEndian(dst, f); return;
            case SmiDtype.Fp64 when reader.TryGetDouble(out var d): BinaryPrimitives.WriteDoubleLittleEndian(dst, d); return;
            case SmiDtype.Fp16 when reader.TryGetDouble(out var h): BinaryPrimitives.WriteHalfLittleEndian(dst, (Half)h); return;
            // BF16 is the upper half of an FP32.
            case SmiDtype.Bf16 when reader.TryGetSingle(out var bf): BinaryPrimitives.WriteUInt16LittleEndian(dst, (ushort)(BitConverter.SingleToUInt32Bits(bf) >> 16)); return;
            case SmiDtype.Int8 when reader.TryGetSByte(out var i8): dst[0] = (byte)i8; return;
            case SmiDtype.UInt8 when reader.TryGetByte(out var u8): dst[0] = u8; return;
            case SmiDtype.Int16 when reader.TryGetInt16(out var i16): BinaryPrimitives.WriteInt16LittleEndian(dst, i16); return;
            case SmiDtype.UInt16 when reader.TryGetUInt16(out var u16): BinaryPrimitives.WriteUInt16LittleEndian(dst, u16); return;
            case SmiDtype.Int32 when reader.TryGetInt32(out var i32): BinaryPrimitives.WriteInt32LittleEndian(dst, i32); return;
            case SmiDtype.UInt32 when reader.TryGetUInt32(out var u32): BinaryPrimitives.WriteUInt32LittleEndian(dst, u32); return;
            case SmiDtype.Int64 when reader.TryGetInt64(out var i64): BinaryPrimitives.WriteInt64LittleEndian(dst, i64); return;
            case SmiDtype.UInt64 when reader.TryGetUInt64(out var u64): BinaryPrimitives.WriteUInt64LittleEndian(dst, u64); return;
        }
        throw NotA(ref reader, name, dtype, dtype is SmiDtype.Int8 or SmiDtype.Int16 or SmiDtype.Int32 or SmiDtype.Int64 or SmiDtype.Fp16 or SmiDtype.Fp32 or SmiDtype.Fp64
            ? $"an {SmiDtypes.Name(dtype)}" : $"a {SmiDtypes.Name(dtype)}");
    }

    private static SmiException NotA(ref Utf8JsonReader reader, scoped ReadOnlySpan<byte> name, SmiDtype dtype, string what) =>
        new(SmiStatus.InvalidParam, $"input '{JsonText.Name(name)}' ({SmiDtypes.Name(dtype)}) needs {what}, not {JsonText.Shown(ref reader)}");
}
