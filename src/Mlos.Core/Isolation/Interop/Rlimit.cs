using System.Runtime.InteropServices;

namespace Mlos.Core.Isolation.Interop;

/// <summary>
/// The one boundary file for resource limits: a plugin host bounds its own data segment
/// (RLIMIT_DATA: brk and private writable mappings) before it opens the plugin. RLIMIT_AS would
/// also count the address space the .NET GC reserves without using; cgroup v2 memory.max is not
/// delegated on these machines (hybrid v1 hierarchy).
/// </summary>
internal static unsafe partial class Rlimit
{
    private const int RLIMIT_DATA = 2;

    [StructLayout(LayoutKind.Sequential)]
    private struct Limit
    {
        public ulong Soft, Hard;
    }

    [LibraryImport("libc.so.6", EntryPoint = "setrlimit", SetLastError = true)]
    private static partial int Set(int resource, Limit* limit);

    /// <summary>Limits this process's data segment to <paramref name="bytes"/>; the errno when it cannot.</summary>
    public static int LimitData(ulong bytes)
    {
        var limit = new Limit { Soft = bytes, Hard = bytes };
        return Set(RLIMIT_DATA, &limit) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }
}
