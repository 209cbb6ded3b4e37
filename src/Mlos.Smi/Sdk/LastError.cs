using System.Text;

namespace Mlos.Smi.Sdk;

/// <summary>
/// The per-thread last-error message, kept as a NUL-terminated UTF-8 string that a C caller reads
/// through a <c>const char*</c> until its thread's next failing call replaces it. The bytes live
/// in a pinned managed array held by a thread-static: it never moves, and when the thread exits
/// the array is collected with it. (Native memory per thread would leak for every thread that
/// ever failed: a host with a thread per connection grows without bound.)
/// </summary>
public static unsafe class LastError
{
    /// <summary>Longest message kept, in bytes; longer ones are cut at a character boundary.</summary>
    public const int MaxBytes = 4096;

    [ThreadStatic] private static byte[]? t_message;

    /// <summary>The message, or NULL when this thread has had no failure.</summary>
    public static byte* Pointer =>
        t_message is { } m ? (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetArrayDataReference(m)) : null;

    public static string? Message => Utf8.Read(Pointer);

    public static void Set(string message)
    {
        int n = Math.Min(Encoding.UTF8.GetMaxByteCount(message.Length), MaxBytes - 1);
        var buffer = t_message;
        if (buffer is null || buffer.Length < n + 1)
        {
            // Pinned: C callers hold the pointer after we return. Sized in steps so most
            // threads allocate once.
            buffer = GC.AllocateUninitializedArray<byte>(Math.Max(256, (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)n + 1)), pinned: true);
            t_message = buffer;
        }
        // Stops at a character boundary when the message is longer than MaxBytes.
        System.Text.Unicode.Utf8.FromUtf16(message, buffer.AsSpan(0, n), out _, out int written);
        buffer[written] = 0;
    }

    /// <summary>Records <paramref name="e"/> and returns the status it maps to.</summary>
    public static Abi.SmiStatus From(Exception e)
    {
        Set(e is SmiException ? e.Message : $"{e.GetType().Name}: {e.Message}");
        return SmiException.StatusOf(e);
    }
}
