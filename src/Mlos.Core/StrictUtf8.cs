using System.Buffers;
using Mlos.Smi.Abi;

namespace Mlos.Core;

/// <summary>
/// Ids arrive from C as bytes and are compared as text: bytes that are not UTF-8 would decode to
/// U+FFFD and make different ids equal ("\xff" and "\xfe" both), so they are refused instead.
/// </summary>
public static unsafe class StrictUtf8
{
    /// <summary>Decodes <paramref name="utf8"/> into <paramref name="chars"/>; INVALID_PARAM naming the first bad byte.</summary>
    public static int Decode(ReadOnlySpan<byte> utf8, Span<char> chars, string what)
    {
        var status = System.Text.Unicode.Utf8.ToUtf16(utf8, chars, out int read, out int written, replaceInvalidSequences: false);
        if (status != OperationStatus.Done)
            throw new MlosException(SmiStatus.InvalidParam, $"{what} is not valid UTF-8 at byte {read}");
        return written;
    }

    /// <summary>A NUL-terminated id as a string; NULL gives null.</summary>
    public static string? Read(byte* s, string what)
    {
        if (s == null) return null;
        var utf8 = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(s);
        if (utf8.Length > 4 * MlosCore.MaxIdLength)
            throw new MlosException(SmiStatus.InvalidParam, $"{what} is longer than {MlosCore.MaxIdLength} characters");
        var chars = new char[utf8.Length];
        return new string(chars, 0, Decode(utf8, chars, what));
    }
}
