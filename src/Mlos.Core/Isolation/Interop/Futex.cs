using System.Runtime.InteropServices;

namespace Mlos.Core.Isolation.Interop;

/// <summary>
/// The one boundary file for futex(2) on a word of shared memory: the doorbell of a plugin host's
/// channels (no FUTEX_PRIVATE_FLAG: the word is in a mapping two processes share).
/// </summary>
internal static unsafe partial class Futex
{
    private const long SYS_futex = 202;
    private const int FUTEX_WAIT = 0, FUTEX_WAKE = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds, Nanoseconds;
    }

    [LibraryImport("libc.so.6", EntryPoint = "syscall")]
    private static partial long Syscall(long number, uint* address, int op, uint value, TimeSpec* timeout, void* address2, uint value3);

    /// <summary>Sleeps while *<paramref name="word"/> == <paramref name="expected"/>, at most <paramref name="timeoutMs"/> (woken early by <see cref="Wake"/>, a signal, or by chance).</summary>
    public static void Wait(uint* word, uint expected, int timeoutMs)
    {
        var timeout = new TimeSpec { Seconds = timeoutMs / 1000, Nanoseconds = timeoutMs % 1000 * 1_000_000L };
        Syscall(SYS_futex, word, FUTEX_WAIT, expected, &timeout, null, 0);
    }

    /// <summary>Wakes whoever sleeps on <paramref name="word"/>.</summary>
    public static void Wake(uint* word) => Syscall(SYS_futex, word, FUTEX_WAKE, int.MaxValue, null, null, 0);
}
