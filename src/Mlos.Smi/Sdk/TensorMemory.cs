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
/// object into a 4 KiB-page buffer costs 2.39 ms, into a huge-page one 0.37 ms.
/// A freed large block of up to <see cref="KeptBlockLimit"/> is kept a short while
/// (<see cref="DecayMs"/>, at most <see cref="KeptBytesLimit"/> in all) for the next block of about its size: under steady load
/// each request reuses warm memory and skips the kernel zeroing fresh pages (a quarter of the
/// server's time for 4 MiB tensors); a second after the load ends it is all given back. A
/// cache without that decay holds the largest burst ever seen (glibc's heap with a raised mmap
/// threshold: 700 MB and more for an identity model under 8 concurrent 4 MiB requests).
/// With THP set to "never" the blocks are plain mappings: correct, only slower.
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
            block = Reuse(ref mapped);
            if (block == null) block = MapAligned(mapped);
        }
        *(nuint*)block = mapped;
        return block + Header;
    }

    /// <summary>Frees a block from <see cref="Alloc"/> or <see cref="Grow"/>; NULL is ignored. A large one is kept a while for reuse.</summary>
    public static void Free(void* data) => Free(data, keep: true);

    private static void Free(void* data, bool keep)
    {
        if (data == null) return;
        byte* block = (byte*)data - Header;
        nuint mapped = *(nuint*)block;
        if (mapped == 0) NativeMemory.AlignedFree(block);
        else if (keep) Keep(block, mapped);
        else Mman.Unmap(block, mapped);
    }

    /// <summary>
    /// A block of <paramref name="bytes"/> holding the first <paramref name="used"/> bytes of
    /// <paramref name="data"/>, which goes back at once: a buffer that outgrew it will not need
    /// its smaller self again soon, and keeping every step of its growth would raise its peak.
    /// A mapping grows by mremap, which moves its pages instead of copying them (as glibc's
    /// realloc does for its own mappings): old and new are never both resident.
    /// </summary>
    public static void* Grow(void* data, nuint used, nuint bytes)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(used, bytes);
        if (bytes > nuint.MaxValue - Header - HugeBytes - PageBytes) throw new OutOfMemoryException();
        if (data != null && *(nuint*)((byte*)data - Header) is var mapped and > 0)
        {
            nuint length = (bytes + Header + PageBytes - 1) & ~(PageBytes - 1);
            if (length <= mapped) return data;
            byte* moved = (byte*)Mman.Remap((byte*)data - Header, mapped, length, Mman.MREMAP_MAYMOVE);
            if (moved == Mman.Failed) throw new OutOfMemoryException();
            *(nuint*)moved = length;
            Mman.Advise(moved, length, Mman.MADV_HUGEPAGE); // the new part, and the whole if it moved
            return moved + Header;
        }
        void* grown = Alloc(bytes);
        if (data != null)
        {
            Buffer.MemoryCopy(data, grown, (long)bytes, (long)used);
            Free(data, keep: false);
        }
        return grown;
    }

    /// <summary>Most bytes of freed large blocks kept for reuse, per module (each NativeAOT plugin has its own).</summary>
    public const nuint KeptBytesLimit = 32 << 20;

    /// <summary>
    /// Blocks larger than this go back at once: a model's large intermediates, freed inside one
    /// run, would otherwise stay resident next to the ones that follow and raise the peak of a
    /// large request (measured: 83 -> 105 MB above idle for a 32 MB request through the MLP).
    /// </summary>
    public const nuint KeptBlockLimit = 8 << 20;

    /// <summary>How long a freed large block is kept before it goes back to the system.</summary>
    public const int DecayMs = 1000;

    private struct Kept
    {
        public byte* Block;
        public nuint Length;
        public long FreedAt;
    }

    private static readonly Lock s_lock = new();
    private static readonly Kept[] s_kept = new Kept[32];
    private static int s_keptCount;
    private static nuint s_keptBytes;
    // Made with the class, so that keeping a block (from a plugin's release callback, where
    // nothing may throw) never has to allocate; scheduled only while blocks are kept.
    private static readonly Timer s_decay = new(_ => Decay(), null, Timeout.Infinite, Timeout.Infinite);
    private static bool s_armed;

    /// <summary>Bytes kept for reuse now (for tests).</summary>
    internal static nuint KeptBytes
    {
        get { lock (s_lock) return s_keptBytes; }
    }

    /// <summary>
    /// The smallest kept block of at least <paramref name="length"/> bytes and at most twice as
    /// many (more would keep too much resident for a small tensor); its length replaces the one asked.
    /// </summary>
    private static byte* Reuse(ref nuint length)
    {
        lock (s_lock)
        {
            int best = -1;
            for (int i = 0; i < s_keptCount; i++)
            {
                nuint l = s_kept[i].Length;
                if (l >= length && l / 2 <= length && (best < 0 || l < s_kept[best].Length)) best = i;
            }
            if (best < 0) return null;
            var kept = s_kept[best];
            s_kept[best] = s_kept[--s_keptCount];
            s_keptBytes -= kept.Length;
            length = kept.Length;
            return kept.Block;
        }
    }

    /// <summary>Keeps a freed block for reuse, making room by giving back the oldest; one too large to keep goes back at once.</summary>
    private static void Keep(byte* block, nuint length)
    {
        lock (s_lock)
        {
            // The data's size decides (a tensor of exactly the limit is kept), not the header's page.
            if (length - PageBytes <= KeptBlockLimit)
            {
                while (s_keptCount == s_kept.Length || s_keptBytes + length > KeptBytesLimit) GiveBack(Oldest());
                s_kept[s_keptCount++] = new Kept { Block = block, Length = length, FreedAt = Environment.TickCount64 };
                s_keptBytes += length;
                if (!s_armed) s_armed = s_decay.Change(DecayMs, DecayMs); // armed once: frees that keep coming must not postpone it
                return;
            }
        }
        Mman.Unmap(block, length);
    }

    /// <summary>The timer's tick: blocks kept longer than <see cref="DecayMs"/> go back; with none left it stops.</summary>
    private static void Decay()
    {
        lock (s_lock)
        {
            long now = Environment.TickCount64;
            for (int i = s_keptCount - 1; i >= 0; i--)
                if (now - s_kept[i].FreedAt >= DecayMs) GiveBack(i);
            if (s_keptCount == 0) s_armed = !s_decay.Change(Timeout.Infinite, Timeout.Infinite);
        }
    }

    private static int Oldest()
    {
        int oldest = 0;
        for (int i = 1; i < s_keptCount; i++)
            if (s_kept[i].FreedAt < s_kept[oldest].FreedAt) oldest = i;
        return oldest;
    }

    /// <summary>Unmaps kept block <paramref name="i"/>; the caller holds the lock.</summary>
    private static void GiveBack(int i)
    {
        var kept = s_kept[i];
        s_kept[i] = s_kept[--s_keptCount];
        s_keptBytes -= kept.Length;
        Mman.Unmap(kept.Block, kept.Length);
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
