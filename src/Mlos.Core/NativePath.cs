using System.Text;
using Mlos.Smi.Abi;

namespace Mlos.Core;

/// <summary>
/// A file path as the bytes the operating system takes. Linux paths need not be UTF-8, and a
/// .NET string cannot carry every byte string, so paths from the C API pass through the core
/// as they came and are decoded only to be shown (<see cref="Text"/>, with U+FFFD for bytes
/// that are not UTF-8).
/// </summary>
public sealed class NativePath
{
    private NativePath(byte[] terminated)
    {
        Terminated = terminated;
        Text = Encoding.UTF8.GetString(terminated, 0, terminated.Length - 1);
    }

    /// <summary>The bytes with a NUL after them, for calls that take a C string.</summary>
    public byte[] Terminated { get; }

    public ReadOnlySpan<byte> Bytes => Terminated.AsSpan(0, Terminated.Length - 1);

    /// <summary>The path for messages and JSON.</summary>
    public string Text { get; }

    public override string ToString() => Text;

    /// <summary>A path from a C string; NULL gives null.</summary>
    public static unsafe NativePath? FromC(byte* s) =>
        s == null ? null : From(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(s));

    public static NativePath From(ReadOnlySpan<byte> bytes)
    {
        var terminated = new byte[bytes.Length + 1];
        bytes.CopyTo(terminated);
        return new NativePath(terminated);
    }

    /// <summary>A path given as text (the server, config files); NUL, which no path holds, is refused.</summary>
    public static NativePath? FromString(string? s)
    {
        if (s is null) return null;
        if (s.Contains('\0')) throw new MlosException(SmiStatus.InvalidParam, "a path must not contain NUL");
        return From(Encoding.UTF8.GetBytes(s));
    }

    /// <summary>
    /// This path made absolute (dlopen searches the library path for a name without a slash).
    /// Text that is UTF-8 is normalised against the current directory; other bytes are kept as
    /// they are, behind "./" when relative.
    /// </summary>
    public NativePath Absolute()
    {
        if (System.Text.Unicode.Utf8.IsValid(Bytes)) return From(Encoding.UTF8.GetBytes(Path.GetFullPath(Text)));
        return Bytes.Length > 0 && Bytes[0] == (byte)'/' ? this : From([.. "./"u8, .. Bytes]);
    }
}
