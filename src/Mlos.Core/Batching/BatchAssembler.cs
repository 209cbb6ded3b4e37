using System.Runtime.InteropServices;
using Mlos.Smi.Abi;

namespace Mlos.Core.Batching;

/// <summary>
/// Concatenates requests along dim 0 into one set of input tensors, and cuts the batch's outputs
/// back into each request's share. Used by one leader at a time (see DynamicBatcher): its buffers are reused from
/// batch to batch. A request's rows of an output are not copied: it points into the batch's
/// output and holds a share of it (only callers that gave buffers get copies).
/// </summary>
internal sealed unsafe class BatchAssembler : IDisposable
{
    public const int MaxOutputs = 64;

    private readonly SmiTensor* _inputs = (SmiTensor*)NativeMemory.AllocZeroed(64, (nuint)sizeof(SmiTensor));
    private readonly SmiTensor* _outputs = (SmiTensor*)NativeMemory.AllocZeroed(MaxOutputs, (nuint)sizeof(SmiTensor));
    private readonly void*[] _buffers = new void*[64];
    private readonly nuint[] _capacities = new nuint[64];

    public SmiTensor* Inputs => _inputs;
    public SmiTensor* Outputs => _outputs;

    /// <summary>The merged inputs of <paramref name="batch"/> (same signature, checked by the queue).</summary>
    public void Merge(List<BatchRequest> batch, long totalRows)
    {
        var first = batch[0];
        for (int i = 0; i < first.NumInputs; i++)
        {
            nuint total = 0;
            foreach (var r in batch) total += r.Inputs[i].ByteSize;
            byte* at = (byte*)Scratch(i, total);
            foreach (var r in batch)
            {
                ref readonly var part = ref r.Inputs[i];
                Buffer.MemoryCopy(part.Data, at, (long)part.ByteSize, (long)part.ByteSize);
                at += part.ByteSize;
            }
            _inputs[i] = first.Inputs[i];
            _inputs[i].Data = _buffers[i];
            _inputs[i].ByteSize = total;
            _inputs[i].Shape[0] = totalRows;
            _inputs[i].Release = null;
            _inputs[i].ReleaseContext = null;
        }
        NativeMemory.Clear(_outputs, (nuint)(MaxOutputs * sizeof(SmiTensor)));
    }

    /// <summary>
    /// Whether the batch's <paramref name="count"/> outputs can be cut by rows: host memory,
    /// fixed-size elements, dim 0 equal to the rows merged. A model whose outputs are not (e.g. a
    /// reduction over the batch) is not batchable: its requests are then run one by one.
    /// </summary>
    public bool Splittable(int count, long totalRows)
    {
        for (int o = 0; o < count; o++)
        {
            ref readonly var t = ref _outputs[o];
            // Rows are cut by byte offsets, so the bytes must be exactly what the shape says
            // (a plugin reporting more would have rows read past its buffer) and in host memory.
            int element = SmiDtypes.ElementSize(t.Dtype);
            if (t.NDim == 0 || t.Shape[0] != totalRows || element <= 0 ||
                t.MemoryType is not (SmiMemoryType.Cpu or SmiMemoryType.CpuPinned) ||
                !SmiTensorRules.TryElementCount(t.Dims, out long elements) || elements > long.MaxValue / element ||
                (ulong)t.ByteSize != (ulong)(elements * element))
                return false;
        }
        return true;
    }

    /// <summary>
    /// Gives <paramref name="r"/> its rows [<paramref name="firstRow"/>, +Rows) of every output, by
    /// smi_spec.h's ownership rule: into its buffers, or into memory it frees through release.
    /// A request whose buffers are too small fails alone.
    /// </summary>
    public void Split(BatchRequest r, int count, long firstRow, long totalRows)
    {
        nuint capacity = *r.NumOutputs;
        if ((nuint)count > capacity)
        {
            *r.NumOutputs = (nuint)count;
            r.Failure = new MlosException(SmiStatus.BufferTooSmall, $"outputs array too small: the model has {count} outputs, capacity is {capacity}");
            r.Answered = true;
            return;
        }
        int done = 0;
        try
        {
            for (; done < count; done++)
            {
                ref readonly var whole = ref _outputs[done];
                nuint rowBytes = whole.ByteSize / (nuint)totalRows;
                nuint bytes = rowBytes * (nuint)r.Rows;
                byte* rows = (byte*)whole.Data + rowBytes * (nuint)firstRow;
                SmiTensor* slot = &r.Outputs[done];
                if (slot->Data != null)
                {
                    if (slot->ByteSize < bytes)
                    {
                        r.Failure = new MlosException(SmiStatus.BufferTooSmall,
                            $"output {done} ({Plugins.PluginText.Read(whole.Name)}) too small: {bytes} bytes needed, {slot->ByteSize} given");
                        slot->ByteSize = bytes;
                        break;
                    }
                    Buffer.MemoryCopy(rows, slot->Data, (long)bytes, (long)bytes);
                    slot->Release = null;
                    slot->ReleaseContext = null;
                }
                else if (whole.Release != null)
                {
                    // No copy: the request's rows stay where the plugin put them, and the batch's
                    // output is released by the last request to let go of its share.
                    slot->ReleaseContext = Share(done); // first: should it throw, the slot holds nothing
                    slot->Data = rows;
                    slot->Release = &ReleaseShare;
                }
                else
                {
                    // The plugin's memory is only lent until its next call: each request gets a copy.
                    var copy = Smi.Sdk.TensorMemory.Alloc(bytes);
                    Buffer.MemoryCopy(rows, copy, (long)bytes, (long)bytes);
                    slot->Data = copy;
                    slot->Release = Smi.Sdk.SmiOutputs.FreeNativeOutput;
                    slot->ReleaseContext = null;
                }
                slot->Name = whole.Name;
                slot->Dtype = whole.Dtype;
                slot->NDim = whole.NDim;
                slot->Shape = whole.Shape;
                slot->Shape[0] = r.Rows;
                slot->ByteSize = bytes;
                slot->MemoryType = SmiMemoryType.Cpu;
                slot->DeviceId = 0;
            }
        }
        catch (OutOfMemoryException)
        {
            // Slots 0..done-1 are filled, slot done holds nothing: released below like any failure.
            r.Failure = new MlosException(SmiStatus.OutOfMemory, $"no memory for output {done} of a batched request");
        }
        r.Answered = true;
        if (r.Failure is null)
        {
            *r.NumOutputs = (nuint)count;
            return;
        }
        for (int o = 0; o < done; o++) // a failed request keeps nothing allocated
        {
            SmiTensor* slot = &r.Outputs[o];
            if (slot->Release != null) slot->Release(slot);
        }
    }

    /// <summary>
    /// Lets go of the batch's own outputs after they were split: one that requests share is
    /// released by the last of them; the others are released now.
    /// </summary>
    public void ReleaseOutputs(int count)
    {
        for (int o = 0; o < count; o++)
        {
            SmiTensor* t = &_outputs[o];
            if (_shares[o] != null) Drop(_shares[o]);
            else if (t->Release != null) t->Release(t);
            _shares[o] = null;
            *t = default;
        }
    }

    /// <summary>A batch output and how many hold it: the assembler until the split ends, and each request given rows of it.</summary>
    private struct OutputShare
    {
        public SmiTensor Whole;
        public int Holders;
    }

    private readonly OutputShare*[] _shares = new OutputShare*[MaxOutputs];

    /// <summary>One more holder of output <paramref name="o"/>, shared from its first split on.</summary>
    private OutputShare* Share(int o)
    {
        var share = _shares[o];
        if (share == null)
        {
            share = (OutputShare*)NativeMemory.Alloc((nuint)sizeof(OutputShare));
            share->Whole = _outputs[o];
            share->Holders = 1;
            _shares[o] = share;
        }
        Interlocked.Increment(ref share->Holders);
        return share;
    }

    private static void Drop(OutputShare* share)
    {
        if (Interlocked.Decrement(ref share->Holders) != 0) return;
        if (share->Whole.Release != null) share->Whole.Release(&share->Whole);
        NativeMemory.Free(share);
    }

    /// <summary>The <c>release</c> of a request's rows of a shared batch output.</summary>
    [UnmanagedCallersOnly]
    private static void ReleaseShare(SmiTensor* t)
    {
        if (t == null || t->ReleaseContext == null) return;
        Drop((OutputShare*)t->ReleaseContext);
        t->Data = null;
        t->Release = null;
        t->ReleaseContext = null;
    }

    private void* Scratch(int i, nuint bytes)
    {
        if (_capacities[i] < bytes)
        {
            Smi.Sdk.TensorMemory.Free(_buffers[i]);
            _capacities[i] = Math.Max(bytes, _capacities[i] * 2);
            _buffers[i] = Smi.Sdk.TensorMemory.Alloc(_capacities[i]);
        }
        return _buffers[i];
    }

    public void Dispose()
    {
        foreach (var b in _buffers) Smi.Sdk.TensorMemory.Free(b);
        NativeMemory.Free(_inputs);
        NativeMemory.Free(_outputs);
    }
}
