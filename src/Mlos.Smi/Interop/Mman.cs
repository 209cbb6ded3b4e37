using System.Runtime.InteropServices;

namespace Mlos.Smi.Interop;

/// <summary>The one boundary file for glibc's memory-mapping calls (mmap, munmap, mremap, madvise).</summary>
public static unsafe partial class Mman
{
    private const string LibC = "libc.so.6";

    public const int PROT_READ = 0x1, PROT_WRITE = 0x2;
    public const int MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20;
    public const int MADV_HUGEPAGE = 14;
    public const int MREMAP_MAYMOVE = 1;

    /// <summary>mmap's MAP_FAILED.</summary>
    public static readonly void* Failed = (void*)-1;

    [LibraryImport(LibC, EntryPoint = "mmap")]
    public static partial void* Map(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport(LibC, EntryPoint = "munmap")]
    public static partial int Unmap(void* address, nuint length);

    [LibraryImport(LibC, EntryPoint = "mremap")]
    public static partial void* Remap(void* address, nuint length, nuint newLength, int flags);

    [LibraryImport(LibC, EntryPoint = "madvise")]
    public static partial int Advise(void* address, nuint length, int advice);
}
