using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>The JSON side of the convention's answer: <c>{"outputs":[…]}</c> and the tensor writer the server shares.</summary>
public static unsafe partial class MlosConvention
{
    /// <summary>
    /// Writes <c>{"outputs":[…]}</c> straight into the caller's <paramref name="capacity"/> bytes at
    /// <paramref name="destination"/>; too small throws BufferTooSmall with the exact size needed.
    /// </summary>
    private static int WriteAnswer(ReadOnlySpan<SmiTensor> outputs, byte* destination, int capacity)
    {
        using var sink = new BoundedBufferWriter(destination, capacity);
        // Escape only what JSON requires: answers are read in curl, never embedded in HTML.
        using (var w = new Utf8JsonWriter(sink, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteStartArray("outputs"u8);
            foreach (ref readonly var t in outputs)
            {
                w.WriteStartObject();
                WriteTensor(w, in t);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        if (sink.Overflowed) throw SmiException.BufferTooSmall((ulong)sink.Written, (ulong)capacity);
        return (int)sink.Written;
    }

    /// <summary>
    /// A tensor's <c>name</c>, <c>datatype</c>, <c>shape</c> and, when <paramref name="withData"/>,
    /// <c>data</c> as a flat array (BYTES elements as strings), into the object being written.
    /// </summary>
    public static void WriteTensor(Utf8JsonWriter w, in SmiTensor t, bool withData = true)
    {
        w.WriteString("name"u8, t.Name == null ? default : MemoryMarshal.CreateReadOnlySpanFromNullTerminated(t.Name));
        w.WriteString("datatype"u8, SmiDtypes.Name(t.Dtype));
        w.WriteStartArray("shape"u8);
        foreach (var d in t.Dims) w.WriteNumberValue(d);
        w.WriteEndArray();
        if (!withData) return;
        w.WritePropertyName("data"u8);
        WriteData(w, t.Dtype, Bytes(in t));
    }

    private static void WriteData(Utf8JsonWriter w, SmiDtype dtype, ReadOnlySpan<byte> raw)
    {
        w.WriteStartArray();
        if (dtype == SmiDtype.Bytes)
        {
            for (int offset = 0; offset + 4 <= raw.Length;)
            {
                int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(raw[offset..]);
                w.WriteStringValue(raw.Slice(offset + 4, length));
                offset += 4 + length;
            }
            w.WriteEndArray();
            return;
        }
        int size = SmiDtypes.ElementSize(dtype);
        for (int i = 0; size > 0 && i + size <= raw.Length; i += size)
        {
            var e = raw.Slice(i, size);
            switch (dtype)
            {
                case SmiDtype.Bool: w.WriteBooleanValue(e[0] != 0); break;
                case SmiDtype.Fp32: Float(w, BinaryPrimitives.ReadSingleLittleEndian(e)); break;
                case SmiDtype.Fp64: Float(w, BinaryPrimitives.ReadDoubleLittleEndian(e)); break;
                case SmiDtype.Fp16: Float(w, (float)BinaryPrimitives.ReadHalfLittleEndian(e)); break;
                case SmiDtype.Bf16: Float(w, BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(e) << 16)); break;
                case SmiDtype.Int8: w.WriteNumberValue((sbyte)e[0]); break;
                case SmiDtype.UInt8: w.WriteNumberValue(e[0]); break;
                case SmiDtype.Int16: w.WriteNumberValue(BinaryPrimitives.ReadInt16LittleEndian(e)); break;
                case SmiDtype.UInt16: w.WriteNumberValue(BinaryPrimitives.ReadUInt16LittleEndian(e)); break;
                case SmiDtype.Int32: w.WriteNumberValue(BinaryPrimitives.ReadInt32LittleEndian(e)); break;
                case SmiDtype.UInt32: w.WriteNumberValue(BinaryPrimitives.ReadUInt32LittleEndian(e)); break;
                case SmiDtype.Int64: w.WriteNumberValue(BinaryPrimitives.ReadInt64LittleEndian(e)); break;
                case SmiDtype.UInt64: w.WriteNumberValue(BinaryPrimitives.ReadUInt64LittleEndian(e)); break;
            }
        }
        w.WriteEndArray();
    }

    /// <summary>JSON has no NaN or infinity: they are written as the strings .NET and Python read back.</summary>
    private static void Float(Utf8JsonWriter w, double x)
    {
        if (double.IsFinite(x)) w.WriteNumberValue(x);
        else w.WriteStringValue(double.IsNaN(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity");
    }

    private static void Float(Utf8JsonWriter w, float x)
    {
        if (float.IsFinite(x)) w.WriteNumberValue(x);
        else Float(w, (double)x);
    }
}
