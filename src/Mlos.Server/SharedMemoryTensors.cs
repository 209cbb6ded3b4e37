using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// A tensor's <c>shared_memory_region</c> / <c>shared_memory_byte_size</c> /
/// <c>shared_memory_offset</c> parameters, as both front doors read them.
/// </summary>
internal readonly record struct SharedMemoryReference(string Region, ulong? ByteSize, ulong Offset);

/// <summary>
/// Tensors in registered shared-memory regions, for both front doors. An input is copied once
/// into the request's memory before anything checks it: the client can write its region at any
/// moment, and a plugin reading in place could see a tensor other than the one the core checked
/// (BYTES length prefixes that now run past the data; indices that a framework checks in one pass
/// and uses in the next, as ONNX Runtime's Gather does). The bytes a request takes from regions
/// are bounded by the REST body limit. An output is written once into its region after the run.
/// Every lease is held by the request's scratch until the answer is sent, so an unregister
/// meanwhile cannot close a region in use.
/// </summary>
internal static unsafe class SharedMemoryTensors
{
    public static void PlaceInput(SharedMemoryRegions regions, in SharedMemoryReference at, string name, int index, KServeScratch scratch)
    {
        if (at.ByteSize is not { } size)
            throw new MlosException(SmiStatus.InvalidParam, $"input '{name}' names shared-memory region '{at.Region}' but no shared_memory_byte_size");
        if (size > (ulong)(regions.MaxRequestBytes - scratch.SharedInputBytes))
            throw new MlosException(SmiStatus.InvalidParam,
                $"input '{name}': a request takes at most {regions.MaxRequestBytes >> 20} MB of inputs from shared memory (--max-body-mb)");
        scratch.SharedInputBytes += (long)size;
        var lease = scratch.Hold(regions.Acquire(at.Region, at.Offset, size));
        nuint start = scratch.Values.Length;
        byte* copy = scratch.Values.Reserve((nuint)size);
        lease.CopyTo(copy);
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
        lease.CopyFrom((byte*)t.Data, t.ByteSize);
    }
}
