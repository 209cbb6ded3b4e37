using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.Core.Models;

/// <summary>
/// Tensors a client sees in one shape and the model takes (or gives) in another of the same
/// elements: Triton's <c>reshape</c>. Inputs are relabelled on the way into the plugin and outputs
/// on the way back, so every front door, the request check, the batcher and the metadata see the
/// client's shape only. With <see cref="Batched"/> (the model has a row limit, Triton's
/// max_batch_size &gt; 0) both shapes exclude dim 0, which passes through as it is. Only the
/// shape changes: the bytes are the same, so nothing is copied.
/// </summary>
public sealed class TensorReshape
{
    /// <summary>One tensor: the shape a client uses and the model's, each with at most one -1.</summary>
    public sealed record Entry(string Name, byte[] Utf8Name, long[] Dims, long[] ModelDims);

    public IReadOnlyList<Entry> Entries { get; }
    public bool Batched { get; }

    private TensorReshape(Entry[] entries, bool batched)
    {
        Entries = entries;
        Batched = batched;
    }

    /// <summary>
    /// The model option <c>"reshape": [{"name":"x","dims":[4],"model_dims":[2,2]}]</c>. Each
    /// side may leave one dimension free (-1), which is worked out from the element count.
    /// </summary>
    internal static TensorReshape? Parse(JsonElement value, bool batched)
    {
        const string what = "model options: 'reshape'";
        if (value.ValueKind != JsonValueKind.Array)
            throw new MlosException(SmiStatus.InvalidParam, $"{what} must be an array of {{\"name\",\"dims\",\"model_dims\"}}");
        var entries = new List<Entry>();
        foreach (var item in value.EnumerateArray())
        {
            string? name = null;
            long[]? dims = null, modelDims = null;
            foreach (var field in JsonConfig.Object(item, what).EnumerateObject())
            {
                switch (field.Name)
                {
                    case "name": name = JsonConfig.String(field, what); break;
                    case "dims": dims = Shape(field); break;
                    case "model_dims": modelDims = Shape(field); break;
                    default: throw JsonConfig.UnknownKey(what, field.Name, "name, dims, model_dims");
                }
            }
            if (string.IsNullOrEmpty(name) || dims is null || modelDims is null)
                throw new MlosException(SmiStatus.InvalidParam, $"{what}: each entry needs a name, dims and model_dims");
            if (entries.Any(e => e.Name == name))
                throw new MlosException(SmiStatus.InvalidParam, $"{what}: '{name}' is reshaped twice");
            if (!Known(dims, out long a, out int freeA) || !Known(modelDims, out long b, out int freeB))
                throw new MlosException(SmiStatus.InvalidParam, $"{what}: '{name}' has a shape whose element count does not fit in 64 bits");
            int most = SmiVersion.MaxDims - (batched ? 1 : 0);
            if (dims.Length > most || modelDims.Length > most)
                throw new MlosException(SmiStatus.InvalidParam, $"{what}: '{name}' has more than {most} dimensions on a side{(batched ? " beside the batch dimension" : "")}");
            // One side fixed, the other with a free dimension: the fixed count must divide among the rest.
            if ((freeA < 0) != (freeB < 0) && (freeA < 0 ? (b == 0 ? a != 0 : a % b != 0) : (a == 0 ? b != 0 : b % a != 0)))
                throw new MlosException(SmiStatus.InvalidParam,
                    $"{what}: '{name}' has {(freeA < 0 ? a : b)} elements as [{Text(freeA < 0 ? dims : modelDims)}], which [{Text(freeA < 0 ? modelDims : dims)}] cannot hold");
            if (freeA < 0 && freeB < 0 && a != b)
                throw new MlosException(SmiStatus.InvalidParam,
                    $"{what}: '{name}' has {a} elements as [{Text(dims)}] but {b} as [{Text(modelDims)}]; a reshape keeps the elements");
            entries.Add(new Entry(name, Encoding.UTF8.GetBytes(name), dims, modelDims));
        }
        return entries.Count == 0 ? null : new TensorReshape([.. entries], batched);

        static long[] Shape(JsonProperty p)
        {
            var dims = JsonConfig.Dims(p, what);
            if (dims.Count(d => d < 0) > 1)
                throw new MlosException(SmiStatus.InvalidParam, $"{what}: '{p.Name}' [{Text(dims)}] has more than one free dimension, so the other side's cannot be worked out");
            return dims;
        }
    }

    /// <summary>
    /// The client's view of the specs a plugin gave: a reshaped tensor's spec becomes its
    /// <c>dims</c> (after the free batch dimension when batched). The model's own spec must agree
    /// with <c>model_dims</c>, and every reshaped name must be one of the model's tensors, or the
    /// load fails here rather than every request later (where the specs are rules, see <see cref="Plugin.SpecsAreRules"/>).
    /// </summary>
    internal ModelSpecs.Spec[] ToClient(string model, ModelSpecs.Spec[] specs, ModelSpecs.Spec[] others, bool rules)
    {
        // A plugin whose specs are defaults only (SMI_CAP_ANY_INPUTS) takes any names and shapes: nothing to hold them to.
        if (!rules) return specs.Select(s => Find(s.Utf8Name) is { } e ? s with { Shape = Full(e.Dims) } : s).ToArray();
        foreach (var e in Entries)
            if (!specs.Any(s => s.Name == e.Name) && !others.Any(s => s.Name == e.Name))
                throw new MlosException(SmiStatus.InvalidParam,
                    $"model '{model}': 'reshape' names '{e.Name}', which is none of its inputs or outputs ({string.Join(", ", specs.Concat(others).Select(s => s.Name))})");
        return specs.Select(s =>
        {
            if (Find(s.Utf8Name) is not { } e || s.Shape.Length == 0) return s;
            long[] expected = Full(e.ModelDims);
            if (expected.Length != s.Shape.Length || expected.Zip(s.Shape).Any(p => p.First >= 0 && p.Second >= 0 && p.First != p.Second))
                throw new MlosException(SmiStatus.InvalidParam,
                    $"model '{model}': '{e.Name}' is reshaped from [{Text(expected)}], but the model's is [{Text(s.Shape)}]");
            return s with { Shape = Full(e.Dims) };
        }).ToArray();
    }

    /// <summary>Every reshaped input of a request can take its model shape: a request that cannot is the client's mistake, found before any batcher.</summary>
    internal unsafe void CheckInputs(SmiTensor* inputs, int count)
    {
        Span<long> shape = stackalloc long[SmiVersion.MaxDims];
        for (int i = 0; i < count; i++)
        {
            if (Find(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(inputs[i].Name)) is not { } e) continue;
            if (Resolve(inputs[i].Dims, e.Dims, e.ModelDims, shape) is { } problem)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{e.Name}' {problem}");
        }
    }

    /// <summary>
    /// Typed infer of <paramref name="plugin"/> with reshaped inputs given in the model's shape
    /// (a copy of their headers; the data is the caller's) and reshaped outputs handed back in
    /// the client's. An output the model gave in a shape its reshape cannot take is the plugin's
    /// breach: every output is released and the call fails.
    /// </summary>
    internal unsafe SmiStatus Infer(Plugin plugin, nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline, in OutputSelection selection)
    {
        int n = (int)numInputs;
        // Small requests (the usual) keep their copy on the stack; the count is bounded by InferInputs.MaxInputs.
        Span<SmiTensor> copy = n <= 16 ? stackalloc SmiTensor[n] : new SmiTensor[n];
        Span<long> shape = stackalloc long[SmiVersion.MaxDims];
        for (int i = 0; i < n; i++)
        {
            copy[i] = inputs[i];
            if (Find(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(inputs[i].Name)) is not { } e) continue;
            if (Resolve(inputs[i].Dims, e.Dims, e.ModelDims, shape) is { } problem)
                throw new MlosException(SmiStatus.InvalidParam, $"input '{e.Name}' {problem}");
            Relabel(ref copy[i], shape, e.ModelDims);
        }
        nuint capacity = *numOutputs;
        SmiStatus status;
        fixed (SmiTensor* given = copy)
            status = plugin.InferCall(handle, given, numInputs, outputs, numOutputs, deadline, selection);
        if (status == SmiStatus.BufferTooSmall)
        {
            // The sizes needed come back in the client's shapes too (the bytes are the same).
            for (int i = 0; i < (int)Math.Min(capacity, *numOutputs); i++)
                if (Find(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(outputs[i].Name)) is { } e && Resolve(outputs[i].Dims, e.ModelDims, e.Dims, shape) is null)
                    Relabel(ref outputs[i], shape, e.Dims);
        }
        if (status != SmiStatus.Success) return status;
        int count = (int)*numOutputs;
        for (int i = 0; i < count; i++)
        {
            ref var t = ref outputs[i];
            if (Find(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(t.Name)) is not { } e) continue;
            if (Resolve(t.Dims, e.ModelDims, e.Dims, shape) is { } problem)
            {
                PluginAnswers.ReleaseAllocated(outputs, count);
                throw new MlosException(SmiStatus.Runtime, $"plugin '{plugin.Id}' broke the SMI contract in infer: output '{e.Name}' {problem}");
            }
            Relabel(ref t, shape, e.Dims);
        }
        return status;
    }

    private Entry? Find(ReadOnlySpan<byte> name)
    {
        foreach (var e in Entries)
            if (e.Utf8Name.AsSpan().SequenceEqual(name)) return e;
        return null;
    }

    /// <summary>
    /// The shape <paramref name="to"/> takes for a tensor of shape <paramref name="given"/>
    /// declared as <paramref name="from"/>, written to <paramref name="result"/> (dim 0 kept when
    /// batched); null when it fits, else why not.
    /// </summary>
    private string? Resolve(ReadOnlySpan<long> given, long[] from, long[] to, Span<long> result)
    {
        int lead = Batched ? 1 : 0;
        if (given.Length != lead + from.Length)
            return $"has shape [{Text(given)}], not [{Text(Full(from))}] (-1: any)";
        var row = given[lead..];
        for (int d = 0; d < from.Length; d++)
            if (from[d] >= 0 && row[d] != from[d])
                return $"has shape [{Text(given)}], not [{Text(Full(from))}] (-1: any)";
        if (!SmiTensorRules.TryElementCount(row, out long elements)) return $"has shape [{Text(given)}], whose element count does not fit in 64 bits";
        if (lead + to.Length > SmiVersion.MaxDims) return $"would have more than {SmiVersion.MaxDims} dimensions as [{Text(to)}]";
        Known(to, out long known, out int free); // cannot overflow: Parse refused such shapes
        if (free < 0 ? known != elements : known == 0 || elements % known != 0)
            return $"has {elements} elements per {(Batched ? "row" : "request")}, which [{Text(to)}] cannot hold";
        if (Batched) result[0] = given[0];
        for (int d = 0; d < to.Length; d++) result[lead + d] = d == free ? elements / known : to[d];
        return null;
    }

    private void Relabel(ref SmiTensor t, ReadOnlySpan<long> shape, long[] to)
    {
        int rank = (Batched ? 1 : 0) + to.Length;
        Span<long> dims = t.Shape;
        shape[..rank].CopyTo(dims);
        dims[rank..].Clear();
        t.NDim = (uint)rank;
    }

    /// <summary>The product of the fixed dimensions and the index of the free one (-1: none); false when the product does not fit in 64 bits.</summary>
    private static bool Known(long[] dims, out long known, out int free)
    {
        known = 1;
        free = -1;
        bool fits = true;
        for (int d = 0; d < dims.Length; d++)
        {
            if (dims[d] < 0) { free = d; continue; }
            if (dims[d] != 0 && known > long.MaxValue / dims[d]) fits = false;
            else known *= dims[d];
        }
        return fits;
    }

    private long[] Full(long[] dims) => Batched ? [-1, .. dims] : dims;

    private static string Text(ReadOnlySpan<long> dims) => string.Join(",", dims.ToArray());
}
