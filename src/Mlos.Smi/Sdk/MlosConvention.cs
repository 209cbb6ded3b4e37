using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>Typed inference, as the convention calls it.</summary>
public delegate void TypedInference(ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs);

/// <summary>
/// The untyped <c>inference(bytes)</c> of the original MLOS Core, built on a plugin's typed
/// inference, so every SDK plugin also serves hosts that know nothing of typed tensors:
/// <list type="bullet">
/// <item>a JSON object of named arrays, <c>{"input_ids":[[1,2]],"mask":[[1,1]]}</c>: nested
/// arrays give the shape, a flat array takes the model's shape with its one dynamic dimension
/// filled; values take the dtype the model declares (where it declares none: integers INT64,
/// other numbers FP32, booleans BOOL, strings BYTES). Answered with
/// <c>{"outputs":[{"name","datatype","shape","data"}]}</c>.</item>
/// <item>anything else is the raw little-endian tensor of a single-input model, answered with
/// the raw bytes of the first output. Raw data can start with '{' by chance, so input that
/// looks like JSON but does not parse is tried as raw bytes before it is refused.</item>
/// </list>
/// </summary>
public static unsafe class MlosConvention
{
    private const int MaxOutputs = 64;

    /// <summary>Runs one untyped request; returns the bytes written to <paramref name="output"/>.</summary>
    /// <param name="specs">The model's inputs; names, and where known dtypes and dims (-1: dynamic).</param>
    public static int Run(ReadOnlySpan<byte> input, Span<byte> output, IReadOnlyList<SmiTensorSpec> specs, TypedInference infer)
    {
        var trimmed = input.TrimStart(" \t\r\n"u8);
        if (trimmed.IsEmpty || trimmed[0] != (byte)'{') return RunRaw(input, output, specs, infer);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(input.ToArray()); }
        catch (JsonException e)
        {
            try { return RunRaw(input, output, specs, infer); }
            catch (SmiException raw) when (raw.Status == SmiStatus.InvalidParam)
            {
                throw new SmiException(SmiStatus.InvalidParam, $"inference input is not valid JSON ({e.Message}), nor raw tensor bytes ({raw.Message})");
            }
        }
        using (doc) return RunJson(doc, output, specs, infer);
    }

    /// <summary>
    /// The shape of <paramref name="count"/> elements for an input declared as
    /// <paramref name="dims"/>, filling its one dynamic dimension.
    /// </summary>
    public static long[] InferShape(string name, ReadOnlySpan<long> dims, long count)
    {
        var shape = dims.ToArray();
        int dynamic = -1;
        long fixedProduct = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] < 0)
            {
                if (dynamic >= 0)
                    throw new SmiException(SmiStatus.InvalidParam,
                        $"input '{name}' has several dynamic dimensions [{string.Join(",", shape)}]: send it as nested arrays or a typed tensor");
                dynamic = i;
            }
            else if (shape[i] > 0 && fixedProduct > long.MaxValue / shape[i])
                throw new SmiException(SmiStatus.InvalidParam,
                    $"input '{name}': the model's shape [{string.Join(",", shape)}] has more elements than a tensor can hold");
            else fixedProduct *= shape[i];
        }
        if (dynamic >= 0 && fixedProduct > 0 && count % fixedProduct == 0) shape[dynamic] = count / fixedProduct;
        else if (dynamic >= 0 || fixedProduct != count)
            throw new SmiException(SmiStatus.InvalidParam,
                $"input '{name}' with {count} elements does not fit the model's shape [{string.Join(",", dims.ToArray())}]");
        return shape;
    }

    private static int RunRaw(ReadOnlySpan<byte> input, Span<byte> output, IReadOnlyList<SmiTensorSpec> specs, TypedInference infer)
    {
        if (specs.Count != 1)
            throw new SmiException(SmiStatus.InvalidParam,
                $"raw bytes need a single-input model; this one has {specs.Count} inputs: send a JSON object of named arrays");
        var spec = specs[0];
        var name = Utf8.Read(spec.Name) ?? "input";
        int size = SmiDtypes.ElementSize(spec.Dtype);
        if (size == 0)
            throw new SmiException(SmiStatus.InvalidParam, $"input '{name}' is {SmiDtypes.Name(spec.Dtype)}: raw bytes need a fixed-size dtype; send JSON or a typed tensor");
        if (input.Length % size != 0)
            throw new SmiException(SmiStatus.InvalidParam, $"{input.Length} raw bytes are not a whole number of {SmiDtypes.Name(spec.Dtype)} elements for '{name}'");
        var shape = InferShape(name, spec.Dims, input.Length / size);
        fixed (byte* data = input)
        fixed (byte* o = output)
        {
            var tensor = Tensor(spec.Name, spec.Dtype, shape, data, input.Length);
            byte* destination = o; // a fixed local cannot be captured; its copy can
            int capacity = output.Length;
            return RunTyped(new ReadOnlySpan<SmiTensor>(&tensor, 1), infer,
                outputs => CopyOut(Bytes(outputs[0]), new Span<byte>(destination, capacity)));
        }
    }

    private static int RunJson(JsonDocument doc, Span<byte> output, IReadOnlyList<SmiTensorSpec> specs, TypedInference infer)
    {
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
            throw new SmiException(SmiStatus.InvalidParam, "inference input must be a JSON object of named arrays");
        var decoded = new List<(string Name, SmiDtype Dtype, long[] Shape, byte[] Data)>();
        foreach (var p in doc.RootElement.EnumerateObject()) decoded.Add(Decode(p, specs));
        var pins = decoded.Select(d => GCHandle.Alloc(d.Data, GCHandleType.Pinned)).ToArray();
        try
        {
            var tensors = new SmiTensor[decoded.Count];
            for (int i = 0; i < decoded.Count; i++)
                tensors[i] = Tensor(Utf8.Intern(decoded[i].Name), decoded[i].Dtype, decoded[i].Shape, (byte*)pins[i].AddrOfPinnedObject(), decoded[i].Data.Length);
            var json = Array.Empty<byte>();
            RunTyped(tensors, infer, outputs =>
            {
                json = WriteJson(outputs);
                return 0;
            });
            return CopyOut(json, output);
        }
        finally
        {
            foreach (var pin in pins) pin.Free();
        }
    }

    private delegate int OutputsReader(ReadOnlySpan<SmiTensor> outputs);

    /// <summary>Runs typed inference into empty slots, lets <paramref name="read"/> see the outputs, then releases them.</summary>
    private static int RunTyped(ReadOnlySpan<SmiTensor> inputs, TypedInference infer, OutputsReader read)
    {
        var slots = new SmiTensor[MaxOutputs];
        fixed (SmiTensor* s = slots)
        {
            var outputs = new SmiOutputs(s, MaxOutputs);
            try
            {
                infer(inputs, ref outputs);
                return read(new ReadOnlySpan<SmiTensor>(s, outputs.Count));
            }
            finally
            {
                outputs.ReleaseAllocated();
            }
        }
    }

    private static SmiTensor Tensor(byte* name, SmiDtype dtype, long[] shape, byte* data, int length)
    {
        var t = new SmiTensor { Name = name, Dtype = dtype, NDim = (uint)shape.Length, Data = data, ByteSize = (nuint)length };
        shape.CopyTo(t.Shape);
        return t;
    }

    private static ReadOnlySpan<byte> Bytes(in SmiTensor t) => new(t.Data, checked((int)t.ByteSize));

    private static int CopyOut(ReadOnlySpan<byte> bytes, Span<byte> output)
    {
        if (bytes.Length > output.Length) throw SmiException.BufferTooSmall((ulong)bytes.Length, (ulong)output.Length);
        bytes.CopyTo(output);
        return bytes.Length;
    }

    /// <summary>One named JSON value as a tensor of the model's dtype and shape.</summary>
    private static (string, SmiDtype, long[], byte[]) Decode(JsonProperty p, IReadOnlyList<SmiTensorSpec> specs)
    {
        SmiTensorSpec? spec = null;
        foreach (var s in specs)
            if (Utf8.Read(s.Name) == p.Name) spec = s;
        if (spec is null && specs.Count > 0)
            throw new SmiException(SmiStatus.InvalidParam,
                $"the model has no input '{p.Name}' (inputs: {string.Join(", ", specs.Select(s => Utf8.Read(s.Name)))})");
        var shape = new List<long>();
        for (var e = p.Value; e.ValueKind == JsonValueKind.Array; e = e[0])
        {
            shape.Add(e.GetArrayLength());
            if (e.GetArrayLength() == 0) break;
        }
        var leaves = new List<JsonElement>();
        Flatten(p.Name, p.Value, shape, 0, leaves);
        var dtype = spec is { Dtype: not SmiDtype.Invalid } known ? known.Dtype : Guess(leaves);
        var dims = spec is { NDim: > 0 } declared ? declared.Dims.ToArray() : null;
        if (dims is not null && shape.Count != dims.Length && shape.Count > 1)
            throw new SmiException(SmiStatus.InvalidParam,
                $"input '{p.Name}' has rank {shape.Count}; the model expects rank {dims.Length} [{string.Join(",", dims)}]");
        var data = Encode(p.Name, dtype, leaves);
        // A flat array (or a scalar) takes the model's shape, where the model declares one.
        var final = dims is null || shape.Count == dims.Length ? shape.ToArray() : InferShape(p.Name, dims, leaves.Count);
        return (p.Name, dtype, final, data);
    }

    /// <summary>
    /// JSON values (a flat or nested array, or a scalar) as <paramref name="dtype"/> elements in
    /// native layout (BYTES in KServe's layout); <paramref name="count"/> is the element count.
    /// For front ends that carry their own shape, such as KServe v2 JSON tensors.
    /// </summary>
    public static byte[] EncodeValues(string name, SmiDtype dtype, JsonElement values, out long count)
    {
        var shape = new List<long>();
        for (var e = values; e.ValueKind == JsonValueKind.Array; e = e[0])
        {
            shape.Add(e.GetArrayLength());
            if (e.GetArrayLength() == 0) break;
        }
        var leaves = new List<JsonElement>();
        Flatten(name, values, shape, 0, leaves);
        count = leaves.Count;
        return Encode(name, dtype, leaves);
    }

    /// <summary>
    /// A tensor's <c>name</c>, <c>datatype</c>, <c>shape</c> and, when <paramref name="withData"/>,
    /// <c>data</c> as a flat array (BYTES elements as strings), into the object being written.
    /// </summary>
    public static void WriteTensor(Utf8JsonWriter w, in SmiTensor t, bool withData = true)
    {
        w.WriteString("name"u8, t.Name == null ? default : System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(t.Name));
        w.WriteString("datatype"u8, SmiDtypes.Name(t.Dtype));
        w.WriteStartArray("shape");
        foreach (var d in t.Dims) w.WriteNumberValue(d);
        w.WriteEndArray();
        if (!withData) return;
        w.WritePropertyName("data");
        WriteData(w, t.Dtype, Bytes(in t));
    }

    private static SmiDtype Guess(List<JsonElement> leaves)
    {
        if (leaves.Count == 0) return SmiDtype.Fp32;
        return leaves[0].ValueKind switch
        {
            JsonValueKind.String => SmiDtype.Bytes,
            JsonValueKind.True or JsonValueKind.False => SmiDtype.Bool,
            _ => leaves.All(l => l.ValueKind == JsonValueKind.Number && l.TryGetInt64(out _)) ? SmiDtype.Int64 : SmiDtype.Fp32,
        };
    }

    private static void Flatten(string name, JsonElement e, List<long> shape, int depth, List<JsonElement> leaves)
    {
        if (e.ValueKind != JsonValueKind.Array)
        {
            if (depth != shape.Count) throw Ragged(name);
            leaves.Add(e);
            return;
        }
        if (depth >= shape.Count || e.GetArrayLength() != shape[depth]) throw Ragged(name);
        foreach (var item in e.EnumerateArray()) Flatten(name, item, shape, depth + 1, leaves);
    }

    private static SmiException Ragged(string name) => new(SmiStatus.InvalidParam, $"input '{name}' is not a rectangular array");

    private static byte[] Encode(string name, SmiDtype dtype, List<JsonElement> leaves)
    {
        if (dtype == SmiDtype.Bytes)
        {
            var text = leaves.Select(l => l.ValueKind == JsonValueKind.String ? Encoding.UTF8.GetBytes(l.GetString()!)
                : throw new SmiException(SmiStatus.InvalidParam, $"input '{name}' is BYTES: its elements must be strings")).ToArray();
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
        int size = SmiDtypes.ElementSize(dtype);
        var data = new byte[leaves.Count * size];
        for (int i = 0; i < leaves.Count; i++) WriteElement(name, dtype, leaves[i], data.AsSpan(i * size, size));
        return data;
    }

    private static void WriteElement(string name, SmiDtype dtype, JsonElement e, Span<byte> dst)
    {
        if (dtype == SmiDtype.Bool)
        {
            dst[0] = e.ValueKind switch
            {
                JsonValueKind.True => 1,
                JsonValueKind.False => 0,
                JsonValueKind.Number when e.TryGetInt64(out var b) && (b == 0 || b == 1) => (byte)b,
                _ => throw NotA(name, dtype, e, "true, false, 0 or 1"),
            };
            return;
        }
        if (e.ValueKind != JsonValueKind.Number) throw NotA(name, dtype, e, "a number");
        switch (dtype)
        {
            case SmiDtype.Fp32: BinaryPrimitives.WriteSingleLittleEndian(dst, e.GetSingle()); break;
            case SmiDtype.Fp64: BinaryPrimitives.WriteDoubleLittleEndian(dst, e.GetDouble()); break;
            case SmiDtype.Fp16: BinaryPrimitives.WriteHalfLittleEndian(dst, (Half)e.GetDouble()); break;
            case SmiDtype.Bf16: BinaryPrimitives.WriteUInt16LittleEndian(dst, (ushort)(BitConverter.SingleToUInt32Bits(e.GetSingle()) >> 16)); break;
            case SmiDtype.Int8: dst[0] = (byte)(e.TryGetSByte(out var i8) ? i8 : throw NotA(name, dtype, e, "an INT8")); break;
            case SmiDtype.UInt8: dst[0] = e.TryGetByte(out var u8) ? u8 : throw NotA(name, dtype, e, "a UINT8"); break;
            case SmiDtype.Int16: BinaryPrimitives.WriteInt16LittleEndian(dst, e.TryGetInt16(out var i16) ? i16 : throw NotA(name, dtype, e, "an INT16")); break;
            case SmiDtype.UInt16: BinaryPrimitives.WriteUInt16LittleEndian(dst, e.TryGetUInt16(out var u16) ? u16 : throw NotA(name, dtype, e, "a UINT16")); break;
            case SmiDtype.Int32: BinaryPrimitives.WriteInt32LittleEndian(dst, e.TryGetInt32(out var i32) ? i32 : throw NotA(name, dtype, e, "an INT32")); break;
            case SmiDtype.UInt32: BinaryPrimitives.WriteUInt32LittleEndian(dst, e.TryGetUInt32(out var u32) ? u32 : throw NotA(name, dtype, e, "a UINT32")); break;
            case SmiDtype.Int64: BinaryPrimitives.WriteInt64LittleEndian(dst, e.TryGetInt64(out var i64) ? i64 : throw NotA(name, dtype, e, "an INT64")); break;
            case SmiDtype.UInt64: BinaryPrimitives.WriteUInt64LittleEndian(dst, e.TryGetUInt64(out var u64) ? u64 : throw NotA(name, dtype, e, "a UINT64")); break;
            default: throw new SmiException(SmiStatus.NotSupported, $"input '{name}' has dtype {SmiDtypes.Name(dtype)}, which JSON cannot carry");
        }
    }

    private static SmiException NotA(string name, SmiDtype dtype, JsonElement e, string what) =>
        new(SmiStatus.InvalidParam, $"input '{name}' ({SmiDtypes.Name(dtype)}) needs {what}, not {e.GetRawText()}");

    private static byte[] WriteJson(ReadOnlySpan<SmiTensor> outputs)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartArray("outputs");
            foreach (ref readonly var t in outputs)
            {
                w.WriteStartObject();
                WriteTensor(w, in t);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
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
