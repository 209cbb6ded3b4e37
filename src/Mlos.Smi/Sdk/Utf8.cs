using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using System.Text;

namespace Mlos.Smi.Sdk;

/// <summary>UTF-8 C strings at the boundary.</summary>
public static unsafe class Utf8
{
    private static readonly ConcurrentDictionary<string, nint> s_interned = new();

    /// <summary>Reads a NUL-terminated UTF-8 string; NULL gives null.</summary>
    public static string? Read(byte* s) => s == null ? null : Marshal.PtrToStringUTF8((nint)s);

    /// <summary>Whether two NUL-terminated strings hold the same bytes (both non-NULL).</summary>
    public static bool Equal(byte* a, byte* b) =>
        a == b || MemoryMarshal.CreateReadOnlySpanFromNullTerminated(a).SequenceEqual(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(b));

    /// <summary>
    /// A native NUL-terminated copy of <paramref name="s"/> that lives for the whole process.
    /// For names and labels the ABI says stay valid (plugin names, tensor names): their set is
    /// small and bounded, so they are kept rather than tracked.
    /// </summary>
    public static byte* Intern(string s) => (byte*)s_interned.GetOrAdd(s, static v => (nint)Allocate(v));

    /// <summary>A fresh native NUL-terminated copy; free it with <see cref="NativeMemory.Free"/>.</summary>
    public static byte* Allocate(string s)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
        p[n] = 0;
        return p;
    }

    /// <summary>
    /// Writes <paramref name="s"/> NUL-terminated into a caller buffer of <c>*size</c> bytes and sets
    /// <c>*size</c> to the bytes used (terminator included); too small throws BufferTooSmall and
    /// sets <c>*size</c> to the bytes needed, leaving the buffer untouched.
    /// </summary>
    public static void WriteTo(string s, byte* buffer, nuint* size)
    {
        int n = Encoding.UTF8.GetByteCount(s);
        nuint need = (nuint)n + 1;
        nuint given = *size;
        *size = need;
        if (buffer == null || given < need)
            throw SmiException.BufferTooSmall(need, given, "text buffer");
        Encoding.UTF8.GetBytes(s, new Span<byte>(buffer, n));
        buffer[n] = 0;
    }
}
