using System.Runtime.InteropServices;

namespace Mlos.Core.Isolation.Interop;

/// <summary>
/// The one boundary file for the socket calls of a plugin host's channels: a connected pair of
/// AF_UNIX stream sockets, whole reads and writes (retried on EINTR, short counts continued),
/// and file descriptors passed with SCM_RIGHTS. Every descriptor is opened close-on-exec, so a
/// host spawned later never inherits another host's channel (which would hide that one's death).
/// </summary>
internal static unsafe partial class UnixSocket
{
    private const string LibC = "libc.so.6";
    private const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_CLOEXEC = 0x80000;
    private const int SOL_SOCKET = 1, SCM_RIGHTS = 1, MSG_NOSIGNAL = 0x4000, MSG_CMSG_CLOEXEC = 0x40000000;
    private const int EINTR = 4;

    [LibraryImport(LibC, EntryPoint = "socketpair", SetLastError = true)]
    private static partial int SocketPair(int domain, int type, int protocol, int* fds);

    [LibraryImport(LibC, EntryPoint = "read", SetLastError = true)]
    private static partial nint Read(int fd, void* buffer, nuint count);

    [LibraryImport(LibC, EntryPoint = "send", SetLastError = true)]
    private static partial nint Send(int fd, void* buffer, nuint count, int flags);

    [LibraryImport(LibC, EntryPoint = "sendmsg", SetLastError = true)]
    private static partial nint SendMessage(int fd, MsgHdr* message, int flags);

    [LibraryImport(LibC, EntryPoint = "recvmsg", SetLastError = true)]
    private static partial nint ReceiveMessage(int fd, MsgHdr* message, int flags);

    [LibraryImport(LibC, EntryPoint = "close")]
    public static partial int Close(int fd);

    [LibraryImport(LibC, EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport(LibC, EntryPoint = "shutdown")]
    public static partial int Shutdown(int fd, int how);

    [LibraryImport(LibC, EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events, Revents;
    }

    /// <summary>
    /// Waits until <paramref name="fd"/> has something to read (or its peer is gone) for at most
    /// <paramref name="timeoutMs"/>; false when the time ran out first.
    /// </summary>
    public static bool WaitReadable(int fd, int timeoutMs)
    {
        const short POLLIN = 1;
        long deadline = Environment.TickCount64 + timeoutMs;
        while (true)
        {
            var p = new PollFd { Fd = fd, Events = POLLIN };
            int left = (int)Math.Max(0, deadline - Environment.TickCount64);
            int r = Poll(&p, 1, left);
            if (r > 0) return true;
            if (r == 0) return false;
            if (Marshal.GetLastPInvokeError() != EINTR) return true; // let the read report it
        }
    }

    /// <summary>Whether the peer of <paramref name="fd"/> has closed its end (end of stream or hang-up waiting), without blocking.</summary>
    public static bool PeerClosed(int fd)
    {
        const short POLLIN = 1, POLLERR = 8, POLLHUP = 16;
        var p = new PollFd { Fd = fd, Events = POLLIN };
        // Nothing is ever written to a doorbell channel's socket: readable means end of stream.
        return Poll(&p, 1, 0) > 0 && (p.Revents & (POLLIN | POLLERR | POLLHUP)) != 0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>cmsghdr (16 bytes) followed by up to two ints: the most fds one message carries.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct FdControl
    {
        public nuint Length;
        public int Level;
        public int Type;
        public int Fd0, Fd1;
    }

    /// <summary>A connected pair of close-on-exec stream sockets.</summary>
    public static (int A, int B) Pair()
    {
        int* fds = stackalloc int[2];
        if (SocketPair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
            throw new MlosException(Smi.Abi.SmiStatus.Runtime, $"socketpair failed (errno {Marshal.GetLastPInvokeError()})");
        return (fds[0], fds[1]);
    }

    /// <summary>A close-on-exec duplicate numbered at least <paramref name="lowest"/>.</summary>
    public static int DuplicateAbove(int fd, int lowest)
    {
        const int F_DUPFD_CLOEXEC = 1030;
        int copy = Fcntl(fd, F_DUPFD_CLOEXEC, lowest);
        if (copy < 0) throw new MlosException(Smi.Abi.SmiStatus.Runtime, $"fcntl(F_DUPFD_CLOEXEC) failed (errno {Marshal.GetLastPInvokeError()})");
        return copy;
    }

    /// <summary>Marks <paramref name="fd"/> close-on-exec (a descriptor placed by dup2 loses the mark).</summary>
    public static void SetCloseOnExec(int fd)
    {
        const int F_SETFD = 2, FD_CLOEXEC = 1;
        Fcntl(fd, F_SETFD, FD_CLOEXEC);
    }

    /// <summary>Reads exactly <paramref name="count"/> bytes; false at end of stream or on an error (the peer is gone).</summary>
    public static bool ReadExactly(int fd, void* buffer, int count)
    {
        byte* p = (byte*)buffer;
        while (count > 0)
        {
            nint n = Read(fd, p, (nuint)count);
            if (n > 0) { p += n; count -= (int)n; continue; }
            if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
            return false;
        }
        return true;
    }

    /// <summary>Writes all <paramref name="count"/> bytes; false when the peer is gone (no SIGPIPE).</summary>
    public static bool WriteAll(int fd, void* buffer, int count)
    {
        byte* p = (byte*)buffer;
        while (count > 0)
        {
            nint n = Send(fd, p, (nuint)count, MSG_NOSIGNAL);
            if (n > 0) { p += n; count -= (int)n; continue; }
            if (n < 0 && Marshal.GetLastPInvokeError() == EINTR) continue;
            return false;
        }
        return true;
    }

    /// <summary>Writes <paramref name="count"/> bytes with two descriptors attached; false when the peer is gone.</summary>
    public static bool SendWithFds(int fd, void* buffer, int count, int fd0, int fd1)
    {
        var iov = new IoVec { Base = buffer, Length = (nuint)count };
        var control = new FdControl { Length = (nuint)(16 + 2 * sizeof(int)), Level = SOL_SOCKET, Type = SCM_RIGHTS, Fd0 = fd0, Fd1 = fd1 };
        var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = &control, ControlLength = (nuint)sizeof(FdControl) };
        nint n;
        do n = SendMessage(fd, &message, MSG_NOSIGNAL);
        while (n < 0 && Marshal.GetLastPInvokeError() == EINTR);
        // A stream socket may take the bytes short; the descriptors travel with the first byte.
        return n >= 0 && (n == count || WriteAll(fd, (byte*)buffer + n, count - (int)n));
    }

    /// <summary>
    /// Reads exactly <paramref name="count"/> bytes and the two descriptors sent with them
    /// (close-on-exec); false when the peer is gone or the message carried no descriptors.
    /// </summary>
    public static bool ReceiveWithFds(int fd, void* buffer, int count, out int fd0, out int fd1)
    {
        fd0 = fd1 = -1;
        var iov = new IoVec { Base = buffer, Length = (nuint)count };
        var control = new FdControl();
        var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = &control, ControlLength = (nuint)sizeof(FdControl) };
        nint n;
        do n = ReceiveMessage(fd, &message, MSG_CMSG_CLOEXEC);
        while (n < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (n <= 0) return false;
        if (message.ControlLength >= (nuint)(16 + 2 * sizeof(int)) && control.Level == SOL_SOCKET && control.Type == SCM_RIGHTS)
        {
            fd0 = control.Fd0;
            fd1 = control.Fd1;
        }
        bool rest = n == count || ReadExactly(fd, (byte*)buffer + n, count - (int)n);
        if (rest && fd0 >= 0) return true;
        if (fd0 >= 0) Close(fd0);
        if (fd1 >= 0) Close(fd1);
        fd0 = fd1 = -1;
        return false;
    }
}
