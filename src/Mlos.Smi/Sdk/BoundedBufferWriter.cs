using System.Buffers;

namespace Mlos.Smi.Sdk;

/// <summary>
/// Writes into a caller's fixed buffer in place; once the writing no longer fits it goes on
/// counting (into a small reused native scratch) so that the caller can be told the exact size
/// needed, as <see cref="SmiException.BufferTooSmall"/> promises, without the answer ever being
/// built in a buffer of its own. On overflow the caller's buffer holds a cut-off prefix.
/// </summary>
internal sealed unsafe class BoundedBufferWriter(byte* destination, int capacity) : IBufferWriter<byte>, IDisposable
{
    private const int MinimumScratch = 4096;

    private readonly NativeMemoryManager _destination = new(destination, capacity);
    private NativeBuffer? _scratch; // made on the first overflow: most answers fit
    private NativeMemoryManager? _scratchMemory;
    private bool _inScratch;

    /// <summary>Bytes written, whether or not they fitted.</summary>
    public long Written { get; private set; }

    public bool Overflowed => Written > capacity;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        int size = Math.Max(sizeHint, 1);
        _inScratch = Written + size > capacity;
        if (!_inScratch) return _destination.Memory[(int)Written..];
        // Writers ask for their worst case (a string's fully escaped length, at least a few KB);
        // near the end of the buffer the actual bytes may still fit: Advance copies them in.
        if (_scratchMemory is null || _scratchMemory.Memory.Length < size)
        {
            _scratch ??= new NativeBuffer(MinimumScratch);
            _scratch.Reserve((nuint)size);
            _scratchMemory ??= new NativeMemoryManager(null, 0);
            _scratchMemory.Point(_scratch.Pointer, (int)Math.Min(_scratch.Capacity, int.MaxValue));
        }
        return _scratchMemory.Memory;
    }

    public Span<byte> GetSpan(int sizeHint = 0) => GetMemory(sizeHint).Span;

    public void Advance(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (_inScratch && Written + count <= capacity)
            _scratchMemory!.Memory.Span[..count].CopyTo(_destination.Memory.Span[(int)Written..]);
        Written += count;
    }

    public void Dispose() => _scratch?.Dispose();
}
