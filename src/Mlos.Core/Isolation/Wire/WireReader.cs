using System.Runtime.CompilerServices;
using Mlos.Smi.Abi;

namespace Mlos.Core.Isolation.Wire;

/// <summary>
/// Reads one message out of a <see cref="SharedRegion"/>, checking every length and offset against
/// the message and the mapping. The peer shares the memory and may change it meanwhile (a plugin
/// host is not trusted): each value is read once, and what the caller keeps it copies.
/// </summary>
internal unsafe ref struct WireReader
{
    private readonly byte* _base;
    private readonly ulong _size;
    private readonly ulong _end;
    private ulong _position;

    public WireReader(SharedRegion region, ulong start, ulong length)
    {
        _base = region.Base;
        _size = region.Size;
        if (start > _size || length > _size - start) throw Malformed("it lies outside the shared memory");
        _position = start;
        _end = start + length;
    }

    public static MlosException Malformed(string why) =>
        new(SmiStatus.Runtime, $"a plugin host sent a malformed message: {why}");

    private byte* Take(ulong count)
    {
        if (count > _end - _position) throw Malformed("it ends early");
        byte* p = _base + _position;
        _position += count;
        return p;
    }

    public uint U32() => Unsafe.ReadUnaligned<uint>(Take(4));
    public int I32() => Unsafe.ReadUnaligned<int>(Take(4));
    public ulong U64() => Unsafe.ReadUnaligned<ulong>(Take(8));
    public long I64() => Unsafe.ReadUnaligned<long>(Take(8));

    /// <summary>
    /// A text in place: its bytes (without the terminator) and a pointer to them as a C string, or
    /// (null, 0) for none. The pointer is for a trusted peer's messages only (the host reading the core's).
    /// </summary>
    public byte* Text(out int length)
    {
        uint n = U32();
        length = 0;
        if (n == WireWriter.NullText) return null;
        var p = Take((ulong)n + 1);
        length = (int)n;
        return p;
    }

    public string? String()
    {
        var p = Text(out int n);
        return p == null ? null : System.Text.Encoding.UTF8.GetString(p, n);
    }

    /// <summary>The next data blob of <paramref name="count"/> bytes, at the 64-byte boundary <see cref="WireWriter.Blob"/> put it.</summary>
    public byte* Blob(ulong count)
    {
        ulong aligned = (_position + 63) & ~63UL;
        if (aligned > _end) throw Malformed("it ends early");
        _position = aligned;
        return Take(count);
    }

    /// <summary>Where the reader is, as an offset in the region.</summary>
    public readonly ulong Position => _position;

    /// <summary>A data blob's place: checked to lie inside the mapping; returns its address.</summary>
    public readonly byte* Data(ulong offset, ulong count)
    {
        if (offset > _size || count > _size - offset) throw Malformed($"a buffer of {count} bytes at {offset} lies outside the shared memory");
        return _base + offset;
    }
}
