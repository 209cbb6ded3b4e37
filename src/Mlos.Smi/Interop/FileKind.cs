using System.Runtime.InteropServices;

namespace Mlos.Smi.Interop;

/// <summary>
/// What a path names, from its bytes: a plugin path may be any byte string, and opening a FIFO
/// or a device to find out would block. The one boundary file for statx(2), whose struct has the
/// same layout on every Linux architecture (unlike struct stat).
/// </summary>
public static unsafe partial class FileKind
{
    public enum Kind { Missing, Regular, Directory, Fifo, Socket, CharDevice, BlockDevice, Other, Unreadable }

    private const int AT_FDCWD = -100;
    private const uint STATX_TYPE = 0x1;
    private const int StxModeOffset = 28; // struct statx: stx_mask, stx_blksize, stx_attributes, stx_nlink, stx_uid, stx_gid, stx_mode
    private const int ENOENT = 2, ENOTDIR = 20;

    [LibraryImport("libc.so.6", EntryPoint = "statx", SetLastError = true)]
    private static partial int Statx(int dirfd, byte* path, int flags, uint mask, byte* statx);

    /// <summary>The kind of file <paramref name="terminatedPath"/> (NUL-terminated) names, following symbolic links.</summary>
    public static Kind Of(ReadOnlySpan<byte> terminatedPath)
    {
        byte* buffer = stackalloc byte[256]; // sizeof(struct statx) is 256
        int rc;
        fixed (byte* p = terminatedPath) rc = Statx(AT_FDCWD, p, 0, STATX_TYPE, buffer);
        if (rc != 0)
        {
            int errno = Marshal.GetLastSystemError();
            return errno is ENOENT or ENOTDIR ? Kind.Missing : Kind.Unreadable;
        }
        return (*(ushort*)(buffer + StxModeOffset) & 0xF000) switch
        {
            0x8000 => Kind.Regular,
            0x4000 => Kind.Directory,
            0x1000 => Kind.Fifo,
            0xC000 => Kind.Socket,
            0x2000 => Kind.CharDevice,
            0x6000 => Kind.BlockDevice,
            _ => Kind.Other,
        };
    }

    /// <summary>"a FIFO", "a directory"… for messages.</summary>
    public static string Describe(Kind kind) => kind switch
    {
        Kind.Regular => "a regular file",
        Kind.Directory => "a directory",
        Kind.Fifo => "a FIFO",
        Kind.Socket => "a socket",
        Kind.CharDevice => "a character device",
        Kind.BlockDevice => "a block device",
        Kind.Missing => "missing",
        Kind.Unreadable => "not accessible",
        _ => "not a regular file",
    };
}
