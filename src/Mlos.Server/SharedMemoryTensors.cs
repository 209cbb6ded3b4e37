using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// A tensor's <c>shared_memory_region</c> / <c>shared_memory_byte_size</c> /
/// <c>shared_memory_offset</c> parameters, as both front doors read them.
/// </summary>
internal readonly record struct SharedMemoryReference(string Region, ulong? ByteSize, ulong Offset);

/// <summary>
/// Tensors in registered shared-memory regions, for both front doors. An input is read in place
/// (the plugin sees the client's memory), except BYTES, which is copied first: its length
/// prefixes are checked by the core, and a client that rewrote them between that check and the
/// plugin's read could send the plugin past its data. An output is written once into its region
/// after the run. Every lease is held by the request's scratch until the answer is sent, so an
/// unregister meanwhile cannot unmap memory in use.
/// </summary>
internal static unsafe class SharedMemoryTensors
{
    public static void PlaceInput(SharedMemoryRegions regions, in SharedMemoryReference at, string name, int index, KServeScratch scratch)
    {
        if (at.ByteSize is not { } size)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' names shared-memory region '{at.Region}' but no shared_memory_byte_size");
        var lease = scratch.Hold(regions.Acquire(at.Region, at.Offset, size));
        SmiTensor* t = &scratch.Inputs[index];
        if (t->Dtype != SmiDtype.Bytes)
        {
            t->Data = size > 0 ? lease.Pointer : null;
            t->ByteSize = (nuint)size;
            return;
        }
        nuint start = scratch.Values.Length;
        byte* copy = scratch.Values.Reserve((nuint)size);
        Buffer.MemoryCopy(lease.Pointer, copy, size, size);
        scratch.Values.Advance((nuint)size);
        scratch.PlaceValues(index, start, (nuint)size);
    }

    /// <summary>The region an output is to be written into, checked and held now (before the model runs).</summary>
    public static SharedMemoryRegions.Lease ForOutput(SharedMemoryRegions regions, in SharedMemoryReference at, ReadOnlySpan<byte> name, KServeScratch scratch)
    {
        if (at.ByteSize is not { } size)
            throw new MlosException(SmiStatus.InvalidParam, $"output '{System.Text.Encoding.UTF8.GetString(name)}' names shared-memory region '{at.Region}' but no shared_memory_byte_size");
        return scratch.Hold(regions.Acquire(at.Region, at.Offset, size));
    }

    /// <summary>Copies an output into its region; one larger than the region is the client's mistake (400), as Triton says.</summary>
    public static void Write(in SmiTensor t, in RequestedOutput r)
    {
        var lease = r.Region!;
        if ((ulong)t.ByteSize > lease.ByteSize)
            throw new MlosException(SmiStatus.InvalidParam,
                $"output '{System.Text.Encoding.UTF8.GetString(r.NameSpan)}' has {t.ByteSize} bytes; its shared-memory region '{r.RegionName}' was given {lease.ByteSize}");
        if (t.ByteSize > 0) Buffer.MemoryCopy(t.Data, lease.Pointer, lease.ByteSize, t.ByteSize);
    }
}
