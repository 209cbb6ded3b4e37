using System.Runtime.InteropServices;
using System.Text;

namespace Mlos.Smi.Sdk;

/// <summary>
/// The per-thread last-error message, kept as a native UTF-8 string so that a C caller can read
/// it through a <c>const char*</c> until its thread's next failing call replaces it.
/// </summary>
public static unsafe class LastError
{
    [ThreadStatic] private static byte* t_message;
    [ThreadStatic] private static nuint t_capacity;

    /// <summary>The message, or NULL when this thread has had no failure.</summary>
    public static byte* Pointer => t_message;

    public static string? Message => Utf8.Read(t_message);

    public static void Set(string message)
    {
        int n = Encoding.UTF8.GetByteCount(message);
        if (t_capacity < (nuint)n + 1)
        {
            NativeMemory.Free(t_message);
            t_capacity = (nuint)Math.Max(n + 1, 256);
            t_message = (byte*)NativeMemory.Alloc(t_capacity);
        }
        Encoding.UTF8.GetBytes(message, new Span<byte>(t_message, n));
        t_message[n] = 0;
    }

    /// <summary>Records <paramref name="e"/> and returns the status it maps to.</summary>
    public static Abi.SmiStatus From(Exception e)
    {
        Set(e is SmiException ? e.Message : $"{e.GetType().Name}: {e.Message}");
        return SmiException.StatusOf(e);
    }
}
