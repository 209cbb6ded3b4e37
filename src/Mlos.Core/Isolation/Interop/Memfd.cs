using System.Runtime.InteropServices;

namespace Mlos.Core.Isolation.Interop;

/// <summary>
/// The one boundary file for anonymous shared files (memfd_create) and their size: the memory a
/// plugin host and the core both map. The core seals every one against shrinking, so neither side
/// can pull pages from under the other's mapping (a read past the end of a mapped file is SIGBUS),
/// and against further seals (a host that sealed growth would starve the channel).
/// </summary>
internal static unsafe partial class Memfd
{
    private const string LibC = "libc.so.6";
    private const uint MFD_CLOEXEC = 1, MFD_ALLOW_SEALING = 2;
    private const int F_ADD_SEALS = 1033, F_SEAL_SEAL = 0x1, F_SEAL_SHRINK = 0x2, SEEK_END = 2, EINTR = 4;

    [LibraryImport(LibC, EntryPoint = "memfd_create", SetLastError = true)]
    private static partial int Create(byte* name, uint flags);

    [LibraryImport(LibC, EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport(LibC, EntryPoint = "ftruncate", SetLastError = true)]
    private static partial int Truncate(int fd, long length);

    [LibraryImport(LibC, EntryPoint = "lseek", SetLastError = true)]
    private static partial long Seek(int fd, long offset, int whence);

    /// <summary>A new close-on-exec shared file of <paramref name="size"/> bytes that cannot shrink.</summary>
    public static int CreateSealed(ulong size)
    {
        int fd;
        fixed (byte* name = "mlos-plugin-host"u8) fd = Create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0) throw Failed("memfd_create");
        if (Fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) != 0 || !Resize(fd, size))
        {
            var e = Failed("sealing or sizing shared memory");
            UnixSocket.Close(fd);
            throw e;
        }
        return fd;
    }

    /// <summary>Grows the file to <paramref name="size"/> bytes; false when the system refuses (or it would shrink).</summary>
    public static bool Resize(int fd, ulong size)
    {
        int r;
        do r = Truncate(fd, (long)size);
        while (r != 0 && Marshal.GetLastPInvokeError() == EINTR);
        return r == 0;
    }

    /// <summary>The file's size now, or -1 when it cannot be told.</summary>
    public static long Size(int fd) => Seek(fd, 0, SEEK_END);

    private static MlosException Failed(string what) =>
        new(Smi.Abi.SmiStatus.OutOfMemory, $"{what} failed (errno {Marshal.GetLastPInvokeError()})");
}
