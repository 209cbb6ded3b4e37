using System.Buffers.Binary;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.Collections;
using Mlos.Core;
using Mlos.Server.Grpc.Protocol;
using Mlos.Smi.Abi;
using static Mlos.Server.Grpc.Protocol.ModelInferRequest.Types;

namespace Mlos.Server.Grpc;

/// <summary>
/// A gRPC <c>ModelInferRequest</c> into the request's scratch, as the REST door fills it: raw
/// contents are handed to the plugin in place (pinned), typed contents are decoded once into the
/// scratch's value buffer, names are checked and kept by the scratch, and the listed outputs become
/// its requested outputs. The protocol's rule on mixing: raw contents for every input (one entry
/// each, in order) or typed contents for every input, never both.
/// </summary>
internal static unsafe class GrpcInputs
{
    public static int Place(ModelInferRequest request, KServeScratch scratch, SharedMemoryRegions regions)
    {
        var inputs = request.Inputs;
        if (inputs.Count > KServeScratch.MaxTensors)
            throw new MlosException(SmiStatus.InvalidParam, $"more than {KServeScratch.MaxTensors} inputs");
        var raw = request.RawInputContents;
        // One raw entry per input, or one per input not in shared memory (clients send both).
        bool perInput = raw.Count == inputs.Count;
        int next = 0;
        for (int i = 0; i < inputs.Count; i++)
        {
            var region = Shared(inputs[i].Parameters, "input", inputs[i].Name);
            ByteString? bytes = raw.Count == 0 || (!perInput && region is not null) ? null
                : perInput ? raw[i]
                : next < raw.Count ? raw[next++] : throw RawCount(raw.Count, inputs.Count);
            PlaceInput(inputs[i], bytes, region, i, scratch, regions);
        }
        if (raw.Count > 0 && !perInput && next != raw.Count) throw RawCount(raw.Count, inputs.Count);
        scratch.PointAtValues(inputs.Count);
        Span<byte> utf8 = stackalloc byte[MaxNameUtf8];
        foreach (var o in request.Outputs)
        {
            var name = Utf8(o.Name, utf8);
            if (Shared(o.Parameters, "output", o.Name) is { } region)
                scratch.RequestOutput(name, binary: true, SharedMemoryTensors.ForOutput(regions, region, name, scratch), region.Region);
            else scratch.RequestOutput(name, binary: true);
        }
        return inputs.Count;
    }

    private static MlosException RawCount(int raw, int inputs) =>
        new(SmiStatus.InvalidParam, $"raw_input_contents has {raw} entries for {inputs} inputs: give one per input, in the order of inputs");

    /// <summary>A tensor's shared_memory_region / _byte_size / _offset parameters (sizes as int64 or uint64, as clients send them).</summary>
    private static SharedMemoryReference? Shared(Google.Protobuf.Collections.MapField<string, InferParameter> parameters, string kind, string name)
    {
        if (parameters.Count == 0) return null; // the usual case: nothing to read, nothing formatted
        string what = $"{kind} '{name}'";
        parameters.TryGetValue("shared_memory_byte_size", out var size);
        parameters.TryGetValue("shared_memory_offset", out var offset);
        if (!parameters.TryGetValue("shared_memory_region", out var region))
            return size is null && offset is null ? null
                : throw new MlosException(SmiStatus.InvalidParam, $"{what} gives a shared-memory size or offset but no shared_memory_region");
        if (region.ParameterChoiceCase != InferParameter.ParameterChoiceOneofCase.StringParam)
            throw new MlosException(SmiStatus.InvalidParam, $"{what}: shared_memory_region must be a string parameter");
        return new SharedMemoryReference(region.StringParam, size is null ? null : Unsigned(size, what), offset is null ? 0 : Unsigned(offset, what));
    }

    private static ulong Unsigned(InferParameter p, string what) => p.ParameterChoiceCase switch
    {
        InferParameter.ParameterChoiceOneofCase.Int64Param when p.Int64Param >= 0 => (ulong)p.Int64Param,
        InferParameter.ParameterChoiceOneofCase.Uint64Param => p.Uint64Param,
        _ => throw new MlosException(SmiStatus.InvalidParam, $"{what}: shared-memory sizes and offsets must be non-negative int64 or uint64 parameters"),
    };

    private static void PlaceInput(InferInputTensor input, ByteString? raw, SharedMemoryReference? region, int index, KServeScratch scratch, SharedMemoryRegions regions)
    {
        SmiTensor* t = &scratch.Inputs[index];
        *t = default;
        scratch.ForgetValues(index);
        var name = input.Name;
        if (name.Length == 0) throw new MlosException(SmiStatus.InvalidParam, "every input needs a name");
        t->Name = scratch.Name(Utf8(name, stackalloc byte[MaxNameUtf8]));
        var dtype = SmiDtypes.Parse(input.Datatype);
        if (dtype == SmiDtype.Invalid)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' needs a KServe datatype (FP32, INT64, BYTES...), not '{input.Datatype}'");
        t->Dtype = dtype;
        if (input.Shape.Count > SmiVersion.MaxDims)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has more than {SmiVersion.MaxDims} dimensions");
        for (int d = 0; d < input.Shape.Count; d++)
        {
            if (input.Shape[d] < 0) throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has a bad shape: dimensions must be non-negative");
            t->Shape[d] = input.Shape[d];
        }
        t->NDim = (uint)input.Shape.Count;
        if (region is { } shared)
        {
            if (input.Contents is not null || raw is { Length: > 0 })
                throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' gives shared_memory_region and contents: its bytes come from one place");
            SharedMemoryTensors.PlaceInput(regions, shared, name, index, scratch);
            return;
        }
        if (raw is not null)
        {
            if (input.Contents is not null)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has contents, but the request gives raw_input_contents: use one or the other for all inputs");
            // Read in place: the core checks the bytes against shape and dtype (BYTES included) for every front door.
            t->Data = raw.Length > 0 ? scratch.Pin(raw.Memory) : null;
            t->ByteSize = (nuint)raw.Length;
            return;
        }
        if (input.Contents is not { } contents)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has no contents (give contents, or raw_input_contents for every input)");
        if (!SmiTensorRules.TryElementCount(t->Dims, out long count))
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has a shape whose element count does not fit in 64 bits");
        nuint start = scratch.Values.Length;
        Decode(contents, dtype, name, count, scratch.Values);
        scratch.PlaceValues(index, start, scratch.Values.Length - start);
    }

    /// <summary>The values in the contents field of <paramref name="dtype"/>, checked for count, range and stray fields, appended in the tensor's own layout.</summary>
    private static void Decode(InferTensorContents c, SmiDtype dtype, string name, long count, Smi.Sdk.NativeBuffer into)
    {
        long given = (long)c.BoolContents.Count + c.IntContents.Count + c.Int64Contents.Count + c.UintContents.Count
            + c.Uint64Contents.Count + c.Fp32Contents.Count + c.Fp64Contents.Count + c.BytesContents.Count;
        long inField = dtype switch
        {
            SmiDtype.Bool => c.BoolContents.Count,
            SmiDtype.Int8 or SmiDtype.Int16 or SmiDtype.Int32 => c.IntContents.Count,
            SmiDtype.Int64 => c.Int64Contents.Count,
            SmiDtype.UInt8 or SmiDtype.UInt16 or SmiDtype.UInt32 => c.UintContents.Count,
            SmiDtype.UInt64 => c.Uint64Contents.Count,
            SmiDtype.Fp32 => c.Fp32Contents.Count,
            SmiDtype.Fp64 => c.Fp64Contents.Count,
            SmiDtype.Bytes => c.BytesContents.Count,
            _ => throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' is {SmiDtypes.Name(dtype)}, which has no contents field: send it as raw_input_contents"),
        };
        if (inField != given)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' is {SmiDtypes.Name(dtype)}: its values go in {FieldName(dtype)} only");
        if (inField != count)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' has {inField} values; its shape needs {count}");
        switch (dtype)
        {
            case SmiDtype.Bool:
                foreach (var v in c.BoolContents) Append(into, (byte)(v ? 1 : 0));
                break;
            case SmiDtype.Int8: Narrow(c.IntContents, into, name, 1); break;
            case SmiDtype.Int16: Narrow(c.IntContents, into, name, 2); break;
            case SmiDtype.Int32: Copy<int>(c.IntContents, into); break;
            case SmiDtype.Int64: Copy<long>(c.Int64Contents, into); break;
            case SmiDtype.UInt8: NarrowUnsigned(c.UintContents, into, name, 1); break;
            case SmiDtype.UInt16: NarrowUnsigned(c.UintContents, into, name, 2); break;
            case SmiDtype.UInt32: Copy<uint>(c.UintContents, into); break;
            case SmiDtype.UInt64: Copy<ulong>(c.Uint64Contents, into); break;
            case SmiDtype.Fp32: Copy<float>(c.Fp32Contents, into); break;
            case SmiDtype.Fp64: Copy<double>(c.Fp64Contents, into); break;
            case SmiDtype.Bytes:
                // Each element as the tensor layout has it: a 4-byte little-endian length, then its bytes.
                foreach (var b in c.BytesContents)
                {
                    byte* at = into.Reserve(checked((nuint)b.Length + 4));
                    BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(at, 4), (uint)b.Length);
                    b.Span.CopyTo(new Span<byte>(at + 4, b.Length));
                    into.Advance((nuint)b.Length + 4);
                }
                break;
        }
    }

    private static string FieldName(SmiDtype dtype) => dtype switch
    {
        SmiDtype.Bool => "bool_contents",
        SmiDtype.Int8 or SmiDtype.Int16 or SmiDtype.Int32 => "int_contents",
        SmiDtype.Int64 => "int64_contents",
        SmiDtype.UInt8 or SmiDtype.UInt16 or SmiDtype.UInt32 => "uint_contents",
        SmiDtype.UInt64 => "uint64_contents",
        SmiDtype.Fp32 => "fp32_contents",
        SmiDtype.Fp64 => "fp64_contents",
        _ => "bytes_contents",
    };

    private static void Append(Smi.Sdk.NativeBuffer into, byte b)
    {
        *into.Reserve(1) = b;
        into.Advance(1);
    }

    private static void Copy<T>(RepeatedField<T> values, Smi.Sdk.NativeBuffer into) where T : unmanaged
    {
        nuint bytes = checked((nuint)values.Count * (nuint)sizeof(T));
        var span = new Span<T>(into.Reserve(bytes), values.Count);
        for (int i = 0; i < span.Length; i++) span[i] = values[i];
        into.Advance(bytes);
    }

    /// <summary>INT8 and INT16 travel widened in int_contents: each value must fit the narrow type.</summary>
    private static void Narrow(RepeatedField<int> values, Smi.Sdk.NativeBuffer into, string name, int size)
    {
        int min = size == 1 ? sbyte.MinValue : short.MinValue, max = size == 1 ? sbyte.MaxValue : short.MaxValue;
        byte* at = into.Reserve((nuint)values.Count * (nuint)size);
        foreach (var v in values)
        {
            if (v < min || v > max) throw OutOfRange(name, v);
            if (size == 1) *(sbyte*)at = (sbyte)v;
            else *(short*)at = (short)v;
            at += size;
        }
        into.Advance((nuint)values.Count * (nuint)size);
    }

    /// <summary>UINT8 and UINT16 travel widened in uint_contents: each value must fit the narrow type.</summary>
    private static void NarrowUnsigned(RepeatedField<uint> values, Smi.Sdk.NativeBuffer into, string name, int size)
    {
        uint max = size == 1 ? byte.MaxValue : ushort.MaxValue;
        byte* at = into.Reserve((nuint)values.Count * (nuint)size);
        foreach (var v in values)
        {
            if (v > max) throw OutOfRange(name, v);
            if (size == 1) *at = (byte)v;
            else *(ushort*)at = (ushort)v;
            at += size;
        }
        into.Advance((nuint)values.Count * (nuint)size);
    }

    private static MlosException OutOfRange(string name, long v) => new(SmiStatus.InvalidParam, $"input '{name}' holds {v}, which its datatype cannot represent");

    /// <summary>A name as UTF-8 in <paramref name="buffer"/> (protobuf strings are UTF-8 on the wire; decoded and re-encoded here).</summary>
    private static ReadOnlySpan<byte> Utf8(string s, Span<byte> buffer) =>
        s.Length <= KServeScratch.MaxNameBytes ? buffer[..Encoding.UTF8.GetBytes(s, buffer)] : Encoding.UTF8.GetBytes(s); // too long: the scratch refuses it

    /// <summary>Room for any name the scratch accepts, as UTF-8 (at most 3 bytes per UTF-16 unit).</summary>
    private const int MaxNameUtf8 = 3 * KServeScratch.MaxNameBytes;
}
