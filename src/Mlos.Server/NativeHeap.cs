using System.Runtime.InteropServices;

namespace Mlos.Server;

/// <summary>
/// glibc's malloc serves a large block from its heap instead of mmap once a block of that size has
/// been freed (its mmap threshold rises to the largest freed block, up to 32 MB), and memory in the
/// heap goes back to the system only from its top. After a burst of large requests that leaves
/// tens of MB resident for good. Pinning the threshold at <see cref="LargeBytes"/>
/// makes every large block (the server's and the plugins', which share this malloc) an mmap of its
/// own that free returns at once.
/// </summary>
internal static partial class NativeHeap
{
    /// <summary>Blocks above this are mmaps of their own; buffers above it are not kept from one request to the next.</summary>
    public const int LargeBytes = 1 << 20;

    private const int M_MMAP_THRESHOLD = -3;

    public static void ReturnLargeBlocksAtOnce()
    {
        try { mallopt(M_MMAP_THRESHOLD, LargeBytes); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { /* not glibc: its own policy applies */ }
    }

    [LibraryImport("libc.so.6", EntryPoint = "mallopt")]
    private static partial int mallopt(int param, int value);
}
