using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// Typed inference on an ONNX session. Inputs become <see cref="OrtValue"/>s over the caller's
/// memory (no copy); outputs that land in an empty slot are handed over as ONNX Runtime
/// allocated them (no copy; the caller's release disposes them), and only slots where the caller
/// gave a buffer get one native copy.
/// </summary>
internal static unsafe class OnnxRunner
{
    private static readonly RunOptions s_runOptions = new();

    /// <summary>Runs the model; the caller owns (disposes) the outputs, in model order.</summary>
    public static OrtValue[] Run(string model, OnnxSession session, ReadOnlySpan<SmiTensor> inputs, RunOptions? options = null, int[]? chosen = null)
    {
        var specs = session.Inputs;
        if (inputs.Length != specs.Length)
            throw new SmiException(SmiStatus.InvalidParam,
                $"model '{model}' takes {specs.Length} inputs ({string.Join(", ", specs.Select(s => s.Name))}); {inputs.Length} given");
        var names = new string[inputs.Length];
        var values = new OrtValue[inputs.Length];
        try
        {
            for (int i = 0; i < inputs.Length; i++)
            {
                var spec = Find(model, specs, inputs[i].Name);
                if (Array.IndexOf(names, spec.Name, 0, i) >= 0)
                    throw new SmiException(SmiStatus.InvalidParam, $"input '{spec.Name}' is given twice");
                names[i] = spec.Name;
                values[i] = ToOrtValue(model, spec, in inputs[i]);
            }
            try
            {
                var outputNames = chosen is null ? session.OutputNames : chosen.Select(o => session.OutputNames[o]).ToArray();
                var results = session.Session.Run(options ?? s_runOptions, names, values, outputNames);
                return [.. results];
            }
            catch (OnnxRuntimeException e)
            {
                // As OrtCApi.Check: an argument ONNX Runtime refuses is the caller's mistake.
                var status = e.Message.Contains("[ErrorCode:InvalidArgument]", StringComparison.Ordinal) ? SmiStatus.InvalidParam : SmiStatus.Runtime;
                throw new SmiException(status, $"ONNX Runtime failed on model '{model}': {e.Message.Trim()}");
            }
        }
        finally
        {
            foreach (var v in values) v?.Dispose();
        }
    }

    /// <summary>
    /// The hot path for fixed-size tensors, through ONNX Runtime's C API: inputs wrap the caller's
    /// memory, outputs are ONNX Runtime's own buffers handed to the caller (release frees the
    /// OrtValue) or copied once into the caller's buffers. Nothing managed is made per request.
    /// </summary>
    public static void RunNative(string model, OnnxSession session, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs, RunOptions? options = null)
    {
        var specs = session.Inputs;
        if (inputs.Length != specs.Length)
            throw new SmiException(SmiStatus.InvalidParam,
                $"model '{model}' takes {specs.Length} inputs ({string.Join(", ", specs.Select(s => s.Name))}); {inputs.Length} given");
        int n = inputs.Length, all = session.Outputs.Length;
        byte** names = stackalloc byte*[Math.Max(1, n)];
        nint* values = stackalloc nint[Math.Max(1, n)];
        nint* results = stackalloc nint[Math.Max(1, all)];
        // The outputs asked of ONNX Runtime: all, or the ones the caller selected (SMI 1.3). Its
        // inference builds still run the whole graph (pruning to the fetches is a training-build
        // option), but the others are never allocated for the caller, handed over or copied.
        int* which = stackalloc int[Math.Max(1, all)];
        byte** outputNames = stackalloc byte*[Math.Max(1, all)];
        int m = Chosen(session, ref outputs, which, outputNames);
        long* shape = stackalloc long[SmiVersion.MaxDims];
        new Span<nint>(values, n).Clear();
        new Span<nint>(results, m).Clear();
        try
        {
            for (int i = 0; i < n; i++)
            {
                var spec = Find(model, specs, inputs[i].Name);
                for (int k = 0; k < i; k++)
                    if (names[k] == spec.NativeName) throw new SmiException(SmiStatus.InvalidParam, $"input '{spec.Name}' is given twice");
                names[i] = spec.NativeName;
                long bytes = Validate(model, spec, in inputs[i]);
                inputs[i].Dims.CopyTo(new Span<long>(shape, SmiVersion.MaxDims));
                OrtCApi.Check(OrtCApi.CreateTensorWithDataAsOrtValue(OrtCApi.CpuMemory, inputs[i].Data, (nuint)bytes, shape, inputs[i].NDim,
                    (int)OnnxTypes.ToOnnx(spec.Dtype), &values[i]), $"input '{spec.Name}'");
            }
            OrtCApi.Check(OrtCApi.Run(session.Handle, options?.DangerousGetHandle() ?? 0, names, values, (nuint)n, outputNames, (nuint)m, results),
                $"ONNX Runtime failed on model '{model}'");
            outputs.Reserve(m);
            for (int o = 0; o < m; o++)
            {
                if (HandOver(session.Outputs[which[o]], results[o], ref outputs)) results[o] = 0;
            }
        }
        finally
        {
            for (int i = 0; i < n; i++) if (values[i] != 0) OrtCApi.ReleaseValue(values[i]);
            for (int o = 0; o < m; o++) if (results[o] != 0) OrtCApi.ReleaseValue(results[o]);
        }
    }

    /// <summary>The indices and names of the outputs to compute, in model order; their count. None selected that the model has: the caller's mistake.</summary>
    private static int Chosen(OnnxSession session, ref SmiOutputs outputs, int* which, byte** names)
    {
        int m = 0;
        for (int o = 0; o < session.Outputs.Length; o++)
        {
            if (!outputs.Wants(session.Outputs[o].NativeName)) continue;
            which[m] = o;
            names[m++] = session.Outputs[o].NativeName;
        }
        if (m == 0 && session.Outputs.Length > 0)
            throw new SmiException(SmiStatus.InvalidParam, $"none of the requested outputs is an output of the model ({string.Join(", ", session.OutputNames)})");
        return m;
    }

    /// <summary>The managed path's selection: null for every output, else the chosen indices in model order.</summary>
    public static int[]? Chosen(OnnxSession session, ref SmiOutputs outputs)
    {
        if (outputs.WantsAll) return null;
        int* which = stackalloc int[Math.Max(1, session.Outputs.Length)];
        byte** names = stackalloc byte*[Math.Max(1, session.Outputs.Length)];
        int m = Chosen(session, ref outputs, which, names);
        return new ReadOnlySpan<int>(which, m).ToArray();
    }

    /// <summary>One output to the caller; true when the caller now owns the OrtValue.</summary>
    private static bool HandOver(TensorSpec spec, nint value, ref SmiOutputs outputs)
    {
        nint info;
        OrtCApi.Check(OrtCApi.GetTensorTypeAndShape(value, &info), $"output '{spec.Name}'");
        int type;
        nuint rank, count;
        long* dims = stackalloc long[SmiVersion.MaxDims];
        try
        {
            OrtCApi.Check(OrtCApi.GetTensorElementType(info, &type), $"output '{spec.Name}'");
            OrtCApi.Check(OrtCApi.GetDimensionsCount(info, &rank), $"output '{spec.Name}'");
            if (rank > SmiVersion.MaxDims)
                throw new SmiException(SmiStatus.NotSupported, $"output '{spec.Name}' has rank {rank}, more than SMI_MAX_DIMS ({SmiVersion.MaxDims})");
            OrtCApi.Check(OrtCApi.GetDimensions(info, dims, rank), $"output '{spec.Name}'");
            OrtCApi.Check(OrtCApi.GetTensorShapeElementCount(info, &count), $"output '{spec.Name}'");
        }
        finally { OrtCApi.ReleaseTensorTypeAndShapeInfo(info); }
        var dtype = OnnxTypes.ToSmi((Microsoft.ML.OnnxRuntime.Tensors.TensorElementType)type);
        void* data;
        OrtCApi.Check(OrtCApi.GetTensorMutableData(value, &data), $"output '{spec.Name}'");
        return outputs.AddOwned(spec.NativeName, dtype, new ReadOnlySpan<long>(dims, (int)rank), data,
            count * (nuint)SmiDtypes.ElementSize(dtype), &ReleaseNativeValue, (void*)value);
    }

    [UnmanagedCallersOnly]
    private static void ReleaseNativeValue(SmiTensor* t)
    {
        if (t == null || t->ReleaseContext == null) return;
        OrtCApi.ReleaseValue((nint)t->ReleaseContext);
        t->Data = null;
        t->Release = null;
        t->ReleaseContext = null;
    }

    /// <summary>Writes <paramref name="results"/> under the SMI output ownership rule and disposes what it does not hand over.</summary>
    public static void WriteOutputs(OnnxSession session, OrtValue[] results, ref SmiOutputs outputs, int[]? chosen = null)
    {
        try
        {
            outputs.Reserve(results.Length);
            for (int i = 0; i < results.Length; i++)
            {
                var spec = session.Outputs[chosen?[i] ?? i];
                var info = results[i].GetTensorTypeAndShape();
                var shape = info.Shape;
                if (info.IsString)
                {
                    var bytes = BytesTensor.Encode(results[i], info.ElementCount);
                    bytes.CopyTo(outputs.Add(spec.NativeName, SmiDtype.Bytes, shape, (nuint)bytes.Length));
                    continue;
                }
                var raw = results[i].GetTensorMutableRawData();
                fixed (byte* data = raw)
                {
                    var handle = GCHandle.Alloc(results[i]);
                    bool handedOver = false;
                    try
                    {
                        handedOver = outputs.AddOwned(spec.NativeName, OnnxTypes.ToSmi(info.ElementDataType), shape, data, (nuint)raw.Length,
                            &ReleaseOrtValue, (void*)GCHandle.ToIntPtr(handle));
                    }
                    finally
                    {
                        if (handedOver) results[i] = null!;
                        else handle.Free();
                    }
                }
            }
        }
        finally
        {
            foreach (var v in results) v?.Dispose();
        }
    }

    /// <summary>The input spec a tensor names; unknown names list the model's.</summary>
    private static TensorSpec Find(string model, TensorSpec[] specs, byte* name)
    {
        if (name == null) throw new SmiException(SmiStatus.InvalidParam, "an input tensor has a NULL name");
        // Compared as UTF-8, in place: the hot path makes no string of the name.
        var utf8 = MemoryMarshal.CreateReadOnlySpanFromNullTerminated(name);
        foreach (var s in specs)
            if (utf8.SequenceEqual(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(s.NativeName))) return s;
        throw new SmiException(SmiStatus.InvalidParam,
            $"model '{model}' has no input '{Utf8.Read(name)}' (inputs: {string.Join(", ", specs.Select(s => s.Name))})");
    }

    /// <summary>Same rank, every fixed dimension equal, no negative one.</summary>
    private static bool Fits(ReadOnlySpan<long> shape, long[] expected)
    {
        if (shape.Length != expected.Length) return false;
        for (int i = 0; i < shape.Length; i++)
            if (shape[i] < 0 || (expected[i] >= 0 && shape[i] != expected[i])) return false;
        return true;
    }

    /// <summary>Checks an input against its spec (dtype, shape, host memory); returns its byte size.</summary>
    private static long Validate(string model, TensorSpec spec, in SmiTensor t)
    {
        if (t.Dtype != spec.Dtype)
            throw new SmiException(SmiStatus.InvalidParam,
                $"input '{spec.Name}' is {SmiDtypes.Name(t.Dtype)}; model '{model}' expects {SmiDtypes.Name(spec.Dtype)}");
        var shape = t.Dims;
        var expected = spec.Dims!; // ONNX files declare every input's rank (OnnxSession)
        if (!Fits(shape, expected))
            throw new SmiException(SmiStatus.InvalidParam,
                $"input '{spec.Name}' has shape [{string.Join(",", shape.ToArray())}]; model '{model}' expects [{string.Join(",", expected)}] (-1: any)");
        if (t.MemoryType == SmiMemoryType.Gpu)
            throw new SmiException(SmiStatus.NotSupported, $"input '{spec.Name}' is in GPU memory; pass host memory");
        return (long)t.ByteSize; // shape, dtype and bytes agree: the SDK's infer entry checked them (SmiTensorRules)
    }

    private static OrtValue ToOrtValue(string model, TensorSpec spec, in SmiTensor t)
    {
        long bytes = Validate(model, spec, in t);
        var shape = t.Dims.ToArray();
        if (spec.Dtype == SmiDtype.Bytes)
        {
            SmiTensorRules.TryElementCount(shape, out long count); // checked at the SDK's infer entry
            return BytesTensor.Decode(spec.Name, new ReadOnlySpan<byte>(t.Data, checked((int)t.ByteSize)), shape, count);
        }
        return OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, OnnxTypes.ToOnnx(spec.Dtype), shape, (nint)t.Data, bytes);
    }

    [UnmanagedCallersOnly]
    private static void ReleaseOrtValue(SmiTensor* t)
    {
        if (t == null || t->ReleaseContext == null) return;
        var handle = GCHandle.FromIntPtr((nint)t->ReleaseContext);
        (handle.Target as OrtValue)?.Dispose();
        handle.Free();
        t->Data = null;
        t->Release = null;
        t->ReleaseContext = null;
    }
}

/// <summary>BYTES tensors in KServe's binary layout: per element a little-endian uint32 length, then the bytes.</summary>
internal static class BytesTensor
{
    public static OrtValue Decode(string name, ReadOnlySpan<byte> data, long[] shape, long count)
    {
        var value = OrtValue.CreateTensorWithEmptyStrings(OrtAllocator.DefaultInstance, shape);
        try
        {
            int offset = 0;
            for (int i = 0; i < count; i++)
            {
                if (data.Length - offset < 4) throw Malformed(name, i);
                int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]);
                offset += 4;
                if (length < 0 || data.Length - offset < length) throw Malformed(name, i);
                value.StringTensorSetElementAt(data.Slice(offset, length), i);
                offset += length;
            }
            if (offset != data.Length)
                throw new SmiException(SmiStatus.InvalidParam, $"BYTES input '{name}' has {data.Length - offset} bytes after its {count} elements");
            return value;
        }
        catch
        {
            value.Dispose();
            throw;
        }
    }

    public static byte[] Encode(OrtValue value, long count)
    {
        int size = 0;
        for (int i = 0; i < count; i++) size += 4 + value.GetStringElementAsSpan(i).Length;
        var bytes = new byte[size];
        int offset = 0;
        for (int i = 0; i < count; i++)
        {
            var s = value.GetStringElementAsSpan(i);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), (uint)s.Length);
            s.CopyTo(bytes.AsSpan(offset + 4));
            offset += 4 + s.Length;
        }
        return bytes;
    }

    private static SmiException Malformed(string name, int element) =>
        new(SmiStatus.InvalidParam, $"BYTES input '{name}' is malformed at element {element}: expected a uint32 length and that many bytes");
}
