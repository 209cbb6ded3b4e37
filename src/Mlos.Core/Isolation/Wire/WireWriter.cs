using System.Runtime.CompilerServices;
using Mlos.Smi.Abi;

namespace Mlos.Core.Isolation.Wire;

/// <summary>
/// Writes one message into a <see cref="SharedRegion"/>, growing it as it goes. Values are little
/// endian and unaligned; a text is a u32 length (<see cref="NullText"/> for none), its bytes and a
/// NUL, so the reader can hand the receiver a C string in place. Data blobs are 64-byte aligned.
/// </summary>
internal unsafe ref struct WireWriter
{
    public const uint NullText = uint.MaxValue;

    private readonly SharedRegion _region;
    private readonly ulong _start;
    private ulong _position;

    public WireWriter(SharedRegion region, ulong start)
    {
        _region = region;
        _start = _position = start;
    }

    public readonly ulong Start => _start;
    public readonly ulong Position => _position;
    public readonly uint Length => checked((uint)(_position - _start));

    private byte* Take(ulong count)
    {
        ulong end = _position + count;
        if (!_region.TryEnsure(end))
            throw new MlosException(SmiStatus.OutOfMemory,
                $"a call needs {Mib(end)} MiB of shared memory with its plugin host; its shared_memory_mb is {Mib(_region.Limit)}");
        byte* p = _region.Base + _position;
        _position = end;
        return p;
    }

    private static ulong Mib(ulong bytes) => (bytes + (1 << 20) - 1) >> 20;

    public void U32(uint value) => Unsafe.WriteUnaligned(Take(4), value);
    public void I32(int value) => Unsafe.WriteUnaligned(Take(4), value);
    public void U64(ulong value) => Unsafe.WriteUnaligned(Take(8), value);
    public void I64(long value) => Unsafe.WriteUnaligned(Take(8), value);

    /// <summary>A C string (null: none), written with its terminator.</summary>
    public void Text(byte* text)
    {
        if (text == null) { U32(NullText); return; }
        var bytes = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(text);
        Bytes(bytes);
    }

    public void Text(string? text)
    {
        if (text is null) { U32(NullText); return; }
        int n = System.Text.Encoding.UTF8.GetByteCount(text);
        U32((uint)n);
        var p = Take((ulong)n + 1);
        System.Text.Encoding.UTF8.GetBytes(text, new Span<byte>(p, n));
        p[n] = 0;
    }

    public void Bytes(ReadOnlySpan<byte> bytes)
    {
        U32((uint)bytes.Length);
        var p = Take((ulong)bytes.Length + 1);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        p[bytes.Length] = 0;
    }

    /// <summary>Room for <paramref name="count"/> bytes of data at a 64-byte boundary; returns its offset in the region.</summary>
    public ulong Blob(ulong count)
    {
        ulong aligned = (_position + 63) & ~63UL;
        Take(aligned - _position);
        ulong offset = _position;
        Take(count);
        return offset;
    }

    /// <summary>Where <paramref name="offset"/> lies now (valid until the next write grows the region).</summary>
    public readonly byte* At(ulong offset) => _region.Base + offset;
}
