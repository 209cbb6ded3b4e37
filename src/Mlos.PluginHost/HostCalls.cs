using System.Runtime.InteropServices;
using Mlos.Core;
using Mlos.Core.Isolation.Wire;
using Mlos.Core.Plugins;
using Mlos.Smi.Abi;

namespace Mlos.PluginHost;

/// <summary>
/// Carries out the core's requests on one plugin: each message read from a channel's region, the
/// plugin's entry called with pointers into that region (inputs are read in place; a caller's
/// output buffer is a stretch of it), and the answer written after the request, outputs the plugin
/// allocated copied in once and released at once. Every reply starts with the plugin's last error
/// (or none). The host checks what the plugin hands back with the core's own rules before it
/// copies anything, so a plugin's garbage size ends as the same breach message it would in process.
/// </summary>
internal sealed unsafe class HostCalls(PluginBoundary plugin, string pluginId)
{
    /// <summary>Serves one channel until the core closes it.</summary>
    public void Serve(WireChannel lane)
    {
        using (lane)
            while (lane.Receive(out var frame))
                if (!Answer(lane, frame)) break;
    }

    private bool Answer(WireChannel lane, in WireFrame frame)
    {
        ulong replyAt = HostMain.Align((ulong)frame.Offset + frame.Length);
        try
        {
            var (status, at, reply) = frame.Op switch
            {
                WireOp.Describe => Describe(lane, replyAt),
                WireOp.Infer => Infer(lane, frame, replyAt),
                WireOp.Inference => Inference(lane, frame, replyAt),
                _ => Admin(lane, frame, replyAt),
            };
            return lane.Send(frame.Op, at, reply, (int)status);
        }
        catch (MlosException e)
        {
            var w = new WireWriter(lane.Region, replyAt);
            w.Text(e.Message);
            return lane.Send(frame.Op, replyAt, w.Length, (int)e.Status, WireFlags.HostFailure);
        }
    }

    private (SmiStatus, ulong, uint) Describe(WireChannel lane, ulong replyAt)
    {
        var (name, version, frameworks) = plugin.Describe();
        var w = new WireWriter(lane.Region, replyAt);
        w.Text((string?)null);
        w.Text(name);
        w.Text(version);
        w.Text(frameworks);
        return (SmiStatus.Success, w.Start, w.Length);
    }

    private string? ErrorFor(SmiStatus status) => status == SmiStatus.Success ? null : plugin.LastError();

    /// <summary>The entries with a status only (and a handle from register): one request, one call, one answer.</summary>
    private (SmiStatus, ulong, uint) Admin(WireChannel lane, in WireFrame frame, ulong replyAt)
    {
        var r = lane.Reader(frame);
        SmiStatus status;
        nint handle = 0;
        switch (frame.Op)
        {
            case WireOp.Initialize: status = plugin.Initialize(r.Text(out _)); break;
            case WireOp.Cleanup: status = plugin.Cleanup(); break;
            case WireOp.Register:
            {
                var metadata = new SmiModelMetadata
                {
                    Name = r.Text(out _), Framework = r.Text(out _), Version = r.Text(out _), Path = r.Text(out _), Config = r.Text(out _),
                };
                status = plugin.RegisterModel(&metadata, &handle);
                break;
            }
            case WireOp.Unregister: status = plugin.UnregisterModel((nint)r.U64()); break;
            case WireOp.Load:
            {
                var h = (nint)r.U64();
                status = plugin.LoadModel(h, r.Text(out _));
                break;
            }
            case WireOp.Unload: status = plugin.UnloadModel((nint)r.U64()); break;
            case WireOp.Deallocate: status = plugin.DeallocateResources((nint)r.U64()); break;
            case WireOp.Allocate:
            {
                var h = (nint)r.U64();
                uint count = r.U32();
                var requirements = new SmiResourceReq[Math.Min(count, (uint)PluginAnswers.MaxTensors)];
                for (int i = 0; i < requirements.Length; i++)
                    requirements[i] = new SmiResourceReq { Type = (SmiResourceType)r.U32(), DeviceId = r.I32(), Amount = r.U64() };
                fixed (SmiResourceReq* q = requirements) status = plugin.AllocateResources(h, q, (nuint)requirements.Length);
                break;
            }
            case WireOp.ModelInfo: return ModelInfo(lane, r.U64(), r.U64(), replyAt);
            case WireOp.ModelIo: return ModelIo(lane, r.U64(), r.U64(), r.U64(), replyAt);
            default: throw new MlosException(SmiStatus.NotSupported, $"the plugin host does not know request {(int)frame.Op}");
        }
        var w = new WireWriter(lane.Region, replyAt);
        w.Text(ErrorFor(status));
        w.U64((ulong)handle);
        return (status, w.Start, w.Length);
    }

    private (SmiStatus, ulong, uint) ModelInfo(WireChannel lane, ulong handle, ulong capacity, ulong replyAt)
    {
        Ensure(lane, replyAt + capacity + 64);
        ulong at = replyAt;
        nuint size = (nuint)capacity;
        var status = plugin.GetModelInfo((nint)handle, lane.Region.Base + at, &size);
        var w = new WireWriter(lane.Region, HostMain.Align(at + capacity));
        w.Text(ErrorFor(status));
        w.U64(size);
        w.U64(at);
        return (status, w.Start, w.Length);
    }

    private (SmiStatus, ulong, uint) ModelIo(WireChannel lane, ulong handle, ulong inputs, ulong outputs, ulong replyAt)
    {
        nuint nIn = (nuint)Math.Min(inputs, (ulong)PluginAnswers.MaxTensors), nOut = (nuint)Math.Min(outputs, (ulong)PluginAnswers.MaxTensors);
        nuint capIn = nIn, capOut = nOut;
        var i = new SmiTensorSpec[(int)nIn];
        var o = new SmiTensorSpec[(int)nOut];
        SmiStatus status;
        fixed (SmiTensorSpec* pi = i)
        fixed (SmiTensorSpec* po = o)
            status = plugin.GetModelIo((nint)handle, pi, &nIn, po, &nOut);
        var w = new WireWriter(lane.Region, replyAt);
        w.Text(ErrorFor(status));
        w.U64(nIn);
        w.U64(nOut);
        bool written = status == SmiStatus.Success && nIn <= capIn && nOut <= capOut;
        w.U32(written ? 1u : 0u);
        if (written)
        {
            WriteSpecs(ref w, i.AsSpan(0, (int)nIn));
            WriteSpecs(ref w, o.AsSpan(0, (int)nOut));
        }
        return (status, w.Start, w.Length);
    }

    private static void WriteSpecs(ref WireWriter w, ReadOnlySpan<SmiTensorSpec> specs)
    {
        foreach (ref readonly var s in specs)
        {
            w.Text(s.Name);
            w.U32((uint)s.Dtype);
            w.U32(s.NDim);
            for (int d = 0; d < SmiVersion.MaxDims; d++) w.I64(s.Shape[d]);
        }
    }

    private (SmiStatus, ulong, uint) Inference(WireChannel lane, in WireFrame frame, ulong replyAt)
    {
        var r = lane.Reader(frame);
        ulong handle = r.U64(), capacity = r.U64(), inputSize = r.U64();
        Ensure(lane, replyAt + capacity + 128);
        r = lane.Reader(frame);
        r.U64(); r.U64(); r.U64();
        byte* input = r.Blob(inputSize);
        ulong at = replyAt;
        nuint size = (nuint)capacity;
        var status = plugin.Inference((nint)handle, input, (nuint)inputSize, lane.Region.Base + at, &size);
        var w = new WireWriter(lane.Region, HostMain.Align(at + capacity));
        w.Text(ErrorFor(status));
        w.U64(size);
        w.U64(at);
        return (status, w.Start, w.Length);
    }

    private const int HeaderBytes = 32;

    [System.Runtime.CompilerServices.SkipLocalsInit]
    private (SmiStatus, ulong, uint) Infer(WireChannel lane, in WireFrame frame, ulong replyAt)
    {
        var r = lane.Reader(frame);
        ulong handle = r.U64(), deadline = r.U64();
        uint mode = r.U32(), capacity = Math.Min(r.U32(), (uint)PluginAnswers.MaxTensors);
        ulong scratch = r.U64();
        Ensure(lane, replyAt + scratch);
        r = new WireReader(lane.Region, frame.Offset + (ulong)HeaderBytes, frame.Length - (ulong)HeaderBytes); // the region may have moved

        var outputs = (SmiTensor*)NativeMemory.AllocZeroed(capacity, (nuint)sizeof(SmiTensor));
        // On the stack for the capacities callers use (the server and the batcher pass 64): no garbage per call.
        Span<ulong> lentAt = capacity <= 64 ? stackalloc ulong[(int)capacity] : new ulong[capacity];
        lentAt.Clear();
        SmiTensor* inputs = null;
        byte** names = null;
        nuint count = capacity;
        try
        {
            ulong place = replyAt;
            uint numLent = r.U32();
            for (uint k = 0; k < numLent; k++)
            {
                uint index = r.U32();
                ulong bytes = r.U64();
                if (index >= capacity) throw new MlosException(SmiStatus.InvalidParam, "a caller buffer for an output slot past the capacity");
                place = HostMain.Align(place);
                lentAt[(int)index] = place;
                outputs[index].Data = lane.Region.Base + place;
                outputs[index].ByteSize = (nuint)bytes;
                place += bytes;
            }
            if (place > replyAt + scratch) throw new MlosException(SmiStatus.InvalidParam, "the caller buffers outgrow the room the request reserved");
            Span<PluginAnswers.Lent> lent = capacity <= 64 ? stackalloc PluginAnswers.Lent[(int)capacity] : new PluginAnswers.Lent[capacity];
            PluginAnswers.Record(outputs, lent);

            uint numNames = r.U32();
            names = (byte**)NativeMemory.Alloc(Math.Max(numNames, 1u), (nuint)sizeof(nint));
            for (uint k = 0; k < numNames; k++) names[k] = r.Text(out _);

            uint numInputs = Math.Min(r.U32(), (uint)PluginAnswers.MaxTensors);
            inputs = (SmiTensor*)NativeMemory.AllocZeroed(Math.Max(numInputs, 1u), (nuint)sizeof(SmiTensor));
            for (uint k = 0; k < numInputs; k++)
            {
                SmiTensor* t = &inputs[k];
                t->Name = r.Text(out _);
                t->Dtype = (SmiDtype)r.U32();
                t->NDim = Math.Min(r.U32(), (uint)SmiVersion.MaxDims);
                for (int d = 0; d < (int)t->NDim; d++) t->Shape[d] = r.I64();
                t->MemoryType = SmiMemoryType.Cpu;
                t->DeviceId = r.I32();
                t->ByteSize = (nuint)r.U64();
                t->Data = r.Blob(t->ByteSize);
            }

            var status = mode switch
            {
                2 => plugin.InferSelected((nint)handle, inputs, numInputs, names, numNames, outputs, &count, deadline),
                1 => plugin.InferWithDeadline((nint)handle, inputs, numInputs, outputs, &count, deadline),
                _ => plugin.Infer((nint)handle, inputs, numInputs, outputs, &count),
            };
            var w = new WireWriter(lane.Region, HostMain.Align(place));
            if (status != SmiStatus.Success)
            {
                PluginAnswers.ReleaseLeftovers(outputs, lent);
                w.Text(ErrorFor(status));
                w.U64(count);
                w.U32(numLent);
                for (uint k = 0; k < capacity; k++)
                    if (lentAt[(int)k] != 0) { w.U32(k); w.U64(outputs[k].ByteSize); }
                return (status, w.Start, w.Length);
            }
            if (PluginAnswers.CheckOutputs(pluginId, outputs, count, lent) is { } breach) throw breach;
            w.Text((string?)null);
            w.U64(count);
            for (nuint k = 0; k < count; k++)
            {
                SmiTensor* t = &outputs[k];
                if (t->Data != null && t->Release != null && t->MemoryType != SmiMemoryType.Cpu && t->MemoryType != SmiMemoryType.CpuPinned)
                    throw new MlosException(SmiStatus.NotSupported, $"plugin '{pluginId}' returned output {k} in device memory; an isolated plugin's outputs must be in host memory");
                w.Text(t->Name);
                w.U32((uint)t->Dtype);
                w.U32(t->NDim);
                for (int d = 0; d < (int)t->NDim; d++) w.I64(t->Shape[d]);
                w.U64(t->ByteSize);
                if (lentAt[(int)k] != 0) { w.U32(1); w.U64(lentAt[(int)k]); }
                else if (t->Data == null) w.U32(0);
                else
                {
                    w.U32(2);
                    ulong blob = w.Blob(t->ByteSize);
                    Buffer.MemoryCopy(t->Data, w.At(blob), t->ByteSize, t->ByteSize);
                }
            }
            return (status, w.Start, w.Length);
        }
        finally
        {
            // Copied or failed: either way the plugin's memory goes back to it now.
            PluginAnswers.ReleaseAllocated(outputs, (int)Math.Min(count, capacity));
            NativeMemory.Free(outputs);
            NativeMemory.Free(inputs);
            NativeMemory.Free(names);
        }
    }

    private static void Ensure(WireChannel lane, ulong bytes)
    {
        if (!lane.Region.TryEnsure(bytes))
            throw new MlosException(SmiStatus.OutOfMemory,
                $"the call needs {(bytes + (1 << 20) - 1) >> 20} MiB of shared memory with the plugin host; its shared_memory_mb is {lane.Region.Limit >> 20}");
    }
}
