using System.Buffers;
using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// An <see cref="IBufferWriter{T}"/> over a <see cref="NativeBuffer"/>: JSON answers are written
/// into it, then sent in slices. A large answer lives in native memory and is given back by
/// <see cref="Reset"/>, instead of growing a managed array the GC may keep committed.
/// </summary>
internal sealed unsafe class BlockWriter : IBufferWriter<byte>, IDisposable
{
    private const int InitialBytes = 4096;

    private NativeBuffer _buffer = new(InitialBytes);
    private readonly NativeMemoryManager _memory = new(null, 0);

    public int WrittenCount => (int)_buffer.Length;
    /// <summary>What was written, to send after an await (native memory does not move).</summary>
    public NativeBytes Written => new(_buffer.Pointer, WrittenCount);

    /// <summary>Empties the writer; a buffer grown past <see cref="NativeHeap.LargeBytes"/> goes back to the system.</summary>
    public void Reset()
    {
        if (_buffer.Capacity <= NativeHeap.LargeBytes)
        {
            _buffer.Clear();
            return;
        }
        _buffer.Dispose();
        _buffer = new NativeBuffer(InitialBytes);
    }

    public void Advance(int count) => _buffer.Advance((nuint)count);

    public Span<byte> GetSpan(int sizeHint = 0) => new(Room(sizeHint), Free);

    /// <summary>Utf8JsonWriter asks for memory, not spans: one manager, re-pointed, maps it onto the buffer.</summary>
    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        _memory.Point(Room(sizeHint), Free);
        return _memory.Memory;
    }

    private byte* Room(int sizeHint) => _buffer.Reserve((nuint)Math.Max(sizeHint, 1));

    private int Free => (int)Math.Min(_buffer.Capacity - _buffer.Length, int.MaxValue);

    public void Dispose() => _buffer.Dispose();
}
