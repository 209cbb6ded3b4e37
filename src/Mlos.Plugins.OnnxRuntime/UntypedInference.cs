using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// The untyped <c>inference(bytes)</c> entry, in the original MLOS convention, so the plugin also
/// serves hosts that know nothing of typed tensors:
/// <list type="bullet">
/// <item>a JSON object of named arrays, <c>{"input_ids":[[1,2]],"mask":[[1,1]]}</c> (nested
/// arrays give the shape; a flat array takes the model's shape with its one dynamic dimension
/// filled); numbers are converted to the dtype the model declares; answered with
/// <c>{"outputs":[{"name","datatype","shape","data"}]}</c>;</item>
/// <item>anything else is the raw little-endian tensor of a single-input model, answered with
/// the raw bytes of the first output. Raw data can start with '{' by chance, so input that
/// looks like JSON but does not parse as an object is tried as raw bytes before it is refused.</item>
/// </list>
/// </summary>
internal static unsafe class UntypedInference
{
    public static int Run(OnnxModel model, ReadOnlySpan<byte> input, Span<byte> output)
    {
        using var lease = model.Acquire();
        var trimmed = input.TrimStart(" \t\r\n"u8);
        if (trimmed.IsEmpty || trimmed[0] != (byte)'{') return RunRaw(model, lease.Session, input, output);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(input.ToArray()); }
        catch (JsonException e)
        {
            try { return RunRaw(model, lease.Session, input, output); }
            catch (SmiException raw) when (raw.Status == SmiStatus.InvalidParam)
            {
                throw new SmiException(SmiStatus.InvalidParam, $"inference input is not valid JSON ({e.Message}), nor raw tensor bytes ({raw.Message})");
            }
        }
        using (doc) return RunJson(model, lease.Session, doc, output);
    }

    private static int RunRaw(OnnxModel model, InferenceSession session, ReadOnlySpan<byte> input, Span<byte> output)
    {
        if (model.Inputs.Length != 1)
            throw new SmiException(SmiStatus.InvalidParam,
                $"raw bytes need a single-input model; '{model.Name}' has {model.Inputs.Length} inputs: send a JSON object of named arrays");
        var spec = model.Inputs[0];
        if (spec.Dtype == SmiDtype.Bytes)
            throw new SmiException(SmiStatus.InvalidParam, $"input '{spec.Name}' is BYTES: send JSON strings or a typed tensor");
        int size = SmiDtypes.ElementSize(spec.Dtype);
        if (input.Length % size != 0)
            throw new SmiException(SmiStatus.InvalidParam, $"{input.Length} raw bytes are not a whole number of {SmiDtypes.Name(spec.Dtype)} elements for '{spec.Name}'");
        var shape = OnnxRunner.InferShape(spec, input.Length / size);
        fixed (byte* data = input)
        {
            var tensor = Tensor(spec, shape, data, input.Length);
            var results = OnnxRunner.Run(model, session, new ReadOnlySpan<SmiTensor>(&tensor, 1));
            try
            {
                var info = results[0].GetTensorTypeAndShape();
                ReadOnlySpan<byte> bytes = info.IsString ? BytesTensor.Encode(results[0], info.ElementCount) : results[0].GetTensorMutableRawData();
                return CopyOut(bytes, output);
            }
            finally
            {
                foreach (var r in results) r.Dispose();
            }
        }
    }

    private static int RunJson(OnnxModel model, InferenceSession session, JsonDocument doc, Span<byte> output)
    {
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new SmiException(SmiStatus.InvalidParam, "inference input must be a JSON object of named arrays");
        {
            var buffers = new List<(IoSpec Spec, long[] Shape, byte[] Data, GCHandle Pin)>();
            try
            {
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    var spec = OnnxRunner.FindByName(model, p.Name);
                    var (shape, data) = Convert(spec, p.Value);
                    buffers.Add((spec, shape, data, GCHandle.Alloc(data, GCHandleType.Pinned)));
                }
                var tensors = new SmiTensor[buffers.Count];
                for (int i = 0; i < buffers.Count; i++)
                {
                    var b = buffers[i];
                    tensors[i] = Tensor(b.Spec, b.Shape, (byte*)b.Pin.AddrOfPinnedObject(), b.Data.Length);
                }
                var results = OnnxRunner.Run(model, session, tensors);
                try { return CopyOut(WriteJson(model, results), output); }
                finally
                {
                    foreach (var r in results) r.Dispose();
                }
            }
            finally
            {
                foreach (var b in buffers) b.Pin.Free();
            }
        }
    }

    private static SmiTensor Tensor(IoSpec spec, long[] shape, byte* data, int length)
    {
        var t = new SmiTensor { Name = spec.NativeName, Dtype = spec.Dtype, NDim = (uint)shape.Length, Data = data, ByteSize = (nuint)length };
        shape.CopyTo(t.Shape);
        return t;
    }

    private static int CopyOut(ReadOnlySpan<byte> bytes, Span<byte> output)
    {
        if (bytes.Length > output.Length) throw SmiException.BufferTooSmall((ulong)bytes.Length, (ulong)output.Length);
        bytes.CopyTo(output);
        return bytes.Length;
    }

    /// <summary>A JSON value (nested arrays or a scalar) as the model's dtype, with its shape.</summary>
    private static (long[] Shape, byte[] Data) Convert(IoSpec spec, JsonElement value)
    {
        var shape = new List<long>();
        for (var e = value; e.ValueKind == JsonValueKind.Array; e = e.GetArrayLength() > 0 ? e[0] : default)
        {
            shape.Add(e.GetArrayLength());
            if (e.GetArrayLength() == 0) break;
        }
        var leaves = new List<JsonElement>();
        Flatten(spec, value, shape, 0, leaves);
        if (shape.Count != spec.Dims.Length && shape.Count > 1)
            throw new SmiException(SmiStatus.InvalidParam,
                $"input '{spec.Name}' has rank {shape.Count}; the model expects rank {spec.Dims.Length} [{string.Join(",", spec.Dims)}]");
        var data = Encode(spec, leaves);
        // A flat array (or a scalar) takes the model's shape.
        var dims = shape.Count == spec.Dims.Length ? shape.ToArray() : OnnxRunner.InferShape(spec, leaves.Count);
        return (dims, data);
    }

    private static void Flatten(IoSpec spec, JsonElement e, List<long> shape, int depth, List<JsonElement> leaves)
    {
        if (e.ValueKind != JsonValueKind.Array)
        {
            if (depth != shape.Count) throw Ragged(spec);
            leaves.Add(e);
            return;
        }
        if (depth >= shape.Count || e.GetArrayLength() != shape[depth]) throw Ragged(spec);
        foreach (var item in e.EnumerateArray()) Flatten(spec, item, shape, depth + 1, leaves);
    }

    private static SmiException Ragged(IoSpec spec) =>
        new(SmiStatus.InvalidParam, $"input '{spec.Name}' is not a rectangular array");

    private static byte[] Encode(IoSpec spec, List<JsonElement> leaves)
    {
        if (spec.Dtype == SmiDtype.Bytes)
        {
            var text = leaves.Select(l => l.ValueKind == JsonValueKind.String ? Encoding.UTF8.GetBytes(l.GetString()!)
                : throw new SmiException(SmiStatus.InvalidParam, $"input '{spec.Name}' is BYTES: its elements must be strings")).ToArray();
            var bytes = new byte[text.Sum(t => 4 + t.Length)];
            int offset = 0;
            foreach (var t in text)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)t.Length);
                t.CopyTo(bytes, offset + 4);
                offset += 4 + t.Length;
            }
            return bytes;
        }
        int size = SmiDtypes.ElementSize(spec.Dtype);
        var data = new byte[leaves.Count * size];
        for (int i = 0; i < leaves.Count; i++) WriteElement(spec, leaves[i], data.AsSpan(i * size, size));
        return data;
    }

    private static void WriteElement(IoSpec spec, JsonElement e, Span<byte> dst)
    {
        if (spec.Dtype == SmiDtype.Bool)
        {
            dst[0] = e.ValueKind switch
            {
                JsonValueKind.True => 1,
                JsonValueKind.False => 0,
                JsonValueKind.Number when e.TryGetInt64(out var b) && (b == 0 || b == 1) => (byte)b,
                _ => throw NotA(spec, e, "true, false, 0 or 1"),
            };
            return;
        }
        if (e.ValueKind != JsonValueKind.Number) throw NotA(spec, e, "a number");
        switch (spec.Dtype)
        {
            case SmiDtype.Fp32: BinaryPrimitives.WriteSingleLittleEndian(dst, e.GetSingle()); break;
            case SmiDtype.Fp64: BinaryPrimitives.WriteDoubleLittleEndian(dst, e.GetDouble()); break;
            case SmiDtype.Fp16: BinaryPrimitives.WriteHalfLittleEndian(dst, (Half)e.GetDouble()); break;
            case SmiDtype.Bf16: BinaryPrimitives.WriteUInt16LittleEndian(dst, (ushort)(BitConverter.SingleToUInt32Bits(e.GetSingle()) >> 16)); break;
            case SmiDtype.Int8: dst[0] = (byte)(e.TryGetSByte(out var i8) ? i8 : throw NotA(spec, e, "an INT8")); break;
            case SmiDtype.UInt8: dst[0] = e.TryGetByte(out var u8) ? u8 : throw NotA(spec, e, "a UINT8"); break;
            case SmiDtype.Int16: BinaryPrimitives.WriteInt16LittleEndian(dst, e.TryGetInt16(out var i16) ? i16 : throw NotA(spec, e, "an INT16")); break;
            case SmiDtype.UInt16: BinaryPrimitives.WriteUInt16LittleEndian(dst, e.TryGetUInt16(out var u16) ? u16 : throw NotA(spec, e, "a UINT16")); break;
            case SmiDtype.Int32: BinaryPrimitives.WriteInt32LittleEndian(dst, e.TryGetInt32(out var i32) ? i32 : throw NotA(spec, e, "an INT32")); break;
            case SmiDtype.UInt32: BinaryPrimitives.WriteUInt32LittleEndian(dst, e.TryGetUInt32(out var u32) ? u32 : throw NotA(spec, e, "a UINT32")); break;
            case SmiDtype.Int64: BinaryPrimitives.WriteInt64LittleEndian(dst, e.TryGetInt64(out var i64) ? i64 : throw NotA(spec, e, "an INT64")); break;
            case SmiDtype.UInt64: BinaryPrimitives.WriteUInt64LittleEndian(dst, e.TryGetUInt64(out var u64) ? u64 : throw NotA(spec, e, "a UINT64")); break;
            default: throw new SmiException(SmiStatus.NotSupported, $"input '{spec.Name}' has dtype {SmiDtypes.Name(spec.Dtype)}, which JSON cannot carry");
        }
    }

    private static SmiException NotA(IoSpec spec, JsonElement e, string what) =>
        new(SmiStatus.InvalidParam, $"input '{spec.Name}' ({SmiDtypes.Name(spec.Dtype)}) needs {what}, not {e.GetRawText()}");

    private static byte[] WriteJson(OnnxModel model, OrtValue[] results)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("outputs");
            for (int i = 0; i < results.Length; i++)
            {
                var info = results[i].GetTensorTypeAndShape();
                var dtype = OnnxTypes.ToSmi(info.ElementDataType);
                w.WriteStartObject();
                w.WriteString("name", model.Outputs[i].Name);
                w.WriteString("datatype", SmiDtypes.Name(dtype));
                w.WriteStartArray("shape");
                foreach (var d in info.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WritePropertyName("data");
                WriteData(w, results[i], dtype, info.ElementCount);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteData(Utf8JsonWriter w, OrtValue v, SmiDtype dtype, long count)
    {
        w.WriteStartArray();
        if (dtype == SmiDtype.Bytes)
        {
            for (int i = 0; i < count; i++) w.WriteStringValue(v.GetStringElementAsSpan(i));
            w.WriteEndArray();
            return;
        }
        var raw = v.GetTensorMutableRawData();
        int size = SmiDtypes.ElementSize(dtype);
        for (int i = 0; i < count; i++)
        {
            var e = raw.Slice(i * size, size);
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
                default: w.WriteNullValue(); break;
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
