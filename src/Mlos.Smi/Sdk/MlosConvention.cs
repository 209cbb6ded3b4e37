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
/// Requests are read and answers written in place, in one pass each: a plugin's memory does not
/// grow with copies of a large request.
/// </summary>
public static unsafe partial class MlosConvention
{
    private const int MaxOutputs = 64;

    /// <summary>Runs one untyped request; returns the bytes written to <paramref name="output"/>.</summary>
    /// <param name="specs">The model's inputs; names, and where known dtypes and dims (-1: dynamic).</param>
    public static int Run(ReadOnlySpan<byte> input, Span<byte> output, IReadOnlyList<SmiTensorSpec> specs, TypedInference infer)
    {
        var trimmed = input.TrimStart(" \t\r\n"u8);
        if (trimmed.IsEmpty || trimmed[0] != (byte)'{') return RunRaw(input, output, specs, infer);
        using var inputs = new JsonNamedInputs();
        try { inputs.Decode(input, specs); }
        catch (JsonException e)
        {
            try { return RunRaw(input, output, specs, infer); }
            catch (SmiException raw) when (raw.Status == SmiStatus.InvalidParam)
            {
                throw new SmiException(SmiStatus.InvalidParam, $"inference input is not valid JSON ({e.Message}), nor raw tensor bytes ({raw.Message})");
            }
        }
        fixed (byte* o = output)
        {
            byte* destination = o; // a fixed local cannot be captured; its copy can
            int capacity = output.Length;
            return RunTyped(inputs.Tensors, infer, outputs => WriteAnswer(outputs, destination, capacity));
        }
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
            var tensor = new SmiTensor { Name = spec.Name, Dtype = spec.Dtype, NDim = (uint)shape.Length, Data = data, ByteSize = (nuint)input.Length };
            shape.CopyTo(tensor.Shape);
            byte* destination = o; // a fixed local cannot be captured; its copy can
            int capacity = output.Length;
            return RunTyped(new ReadOnlySpan<SmiTensor>(&tensor, 1), infer,
                outputs => CopyOut(Bytes(outputs[0]), new Span<byte>(destination, capacity)));
        }
    }

    private delegate int OutputsReader(ReadOnlySpan<SmiTensor> outputs);

    /// <summary>Runs typed inference into empty slots, lets <paramref name="read"/> see the outputs, then releases them.</summary>
    private static int RunTyped(ReadOnlySpan<SmiTensor> inputs, TypedInference infer, OutputsReader read)
    {
        SmiTensor* slots = stackalloc SmiTensor[MaxOutputs];
        // An empty slot (no data) is the one the plugin fills with memory of its own.
        new Span<SmiTensor>(slots, MaxOutputs).Clear();
        var outputs = new SmiOutputs(slots, MaxOutputs);
        try
        {
            infer(inputs, ref outputs);
            return read(new ReadOnlySpan<SmiTensor>(slots, outputs.Count));
        }
        finally
        {
            outputs.ReleaseAllocated();
        }
    }

    private static ReadOnlySpan<byte> Bytes(in SmiTensor t) => new(t.Data, checked((int)t.ByteSize));

    private static int CopyOut(ReadOnlySpan<byte> bytes, Span<byte> output)
    {
        if (bytes.Length > output.Length) throw SmiException.BufferTooSmall((ulong)bytes.Length, (ulong)output.Length);
        bytes.CopyTo(output);
        return bytes.Length;
    }
}
