using System.Runtime.InteropServices;
using Mlos.Smi.Interop;

namespace Mlos.Smi.Sdk;

/// <summary>
/// Native memory for tensor data: what a request's inputs are decoded or copied into, outputs
/// handed to callers, batches gathered and split. A block of <see cref="HugeBytes"/> or more is
/// an anonymous mapping of its own, aligned to 2 MiB and advised as transparent huge pages
/// (madvise: the kernel's default mode on Debian and most distributions), given back to the
/// system when freed; a smaller one comes from malloc.
/// Why: a fresh block is touched page by page, and with 4 KiB pages that is one fault per page.
/// Measured on the 2-core VM (tests/bench): a fresh 4 MiB block filled by memcpy costs 4.65 ms
/// with 4 KiB pages and 0.41 ms with huge pages (a warm one 0.21 ms); pread from a shared-memory
/// object into a 4 KiB-page buffer costs 2.39 ms, into a huge-page one 0.37 ms. Keeping freed
/// blocks in a cache would be warm too, but holds the largest burst ever seen (glibc's heap with
/// a raised mmap threshold: 700 MB and more for an identity model under 8 concurrent 4 MiB
/// requests). With THP set to "never" the blocks are plain mappings: correct, only slower.
/// Every block starts with a small header that says how to free it, so data stays 64-byte
/// aligned (what ONNX Runtime's own allocator gives) and <see cref="Free"/> needs no size.
/// </summary>
public static unsafe class TensorMemory
{
    /// <summary>The size of a huge page on x86-64 and arm64 (4 KiB granule); smaller blocks come from malloc.</summary>
    public const nuint HugeBytes = 2 << 20;

    /// <summary>Bytes before the data: the mapping's length (0 for a malloc block), padded to the alignment.</summary>
    private const nuint Header = 64;

    private const nuint PageBytes = 4096;

    /// <summary>A block of <paramref name="bytes"/> (a valid pointer even for 0); throws <see cref="OutOfMemoryException"/> when none can be had.</summary>
    public static void* Alloc(nuint bytes)
    {
        if (bytes > nuint.MaxValue - Header - HugeBytes - PageBytes) throw new OutOfMemoryException();
        nuint total = bytes + Header;
        byte* block;
        nuint mapped = 0;
        if (total < HugeBytes)
        {
            block = (byte*)NativeMemory.AlignedAlloc(total, Header);
        }
        else
        {
            mapped = (total + PageBytes - 1) & ~(PageBytes - 1);
            block = MapAligned(mapped);
        }
        *(nuint*)block = mapped;
        return block + Header;
    }

    /// <summary>Frees a block from <see cref="Alloc"/> or <see cref="Grow"/>; NULL is ignored.</summary>
    public static void Free(void* data)
    {
        if (data == null) return;
        byte* block = (byte*)data - Header;
        nuint mapped = *(nuint*)block;
        if (mapped == 0) NativeMemory.AlignedFree(block);
        else Mman.Unmap(block, mapped);
    }

    /// <summary>A block of <paramref name="bytes"/> holding the first <paramref name="used"/> bytes of <paramref name="data"/>, which is freed.</summary>
    public static void* Grow(void* data, nuint used, nuint bytes)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(used, bytes);
        void* grown = Alloc(bytes);
        if (data != null)
        {
            Buffer.MemoryCopy(data, grown, (long)bytes, (long)used);
            Free(data);
        }
        return grown;
    }

    /// <summary>
    /// <paramref name="length"/> bytes of fresh zeroed memory starting on a 2 MiB boundary (a
    /// huge page can only back a whole aligned 2 MiB range): map 2 MiB more, cut off both ends.
    /// </summary>
    private static byte* MapAligned(nuint length)
    {
        byte* raw = (byte*)Mman.Map(null, length + HugeBytes, Mman.PROT_READ | Mman.PROT_WRITE, Mman.MAP_PRIVATE | Mman.MAP_ANONYMOUS, -1, 0);
        if (raw == Mman.Failed) throw new OutOfMemoryException();
        byte* start = (byte*)(((nuint)raw + HugeBytes - 1) & ~(HugeBytes - 1));
        nuint head = (nuint)(start - raw), tail = HugeBytes - head;
        if (head > 0) Mman.Unmap(raw, head);
        if (tail > 0) Mman.Unmap(start + length, tail);
        Mman.Advise(start, length, Mman.MADV_HUGEPAGE); // refused where THP is off: plain pages then
        return start;
    }
}
