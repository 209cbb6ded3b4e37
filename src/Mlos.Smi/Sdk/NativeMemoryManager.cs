using System.Buffers;

namespace Mlos.Smi.Sdk;

/// <summary>
/// <see cref="Memory{T}"/> over native memory someone else owns, for APIs such as
/// <see cref="System.Text.Json.Utf8JsonWriter"/> that write through an <see cref="IBufferWriter{T}"/>.
/// <see cref="Point"/> moves it onto another block, so a writer keeps one manager for its life.
/// </summary>
public sealed unsafe class NativeMemoryManager(byte* pointer, int length) : MemoryManager<byte>
{
    private byte* _pointer = pointer;
    private int _length = length;

    /// <summary>Moves the manager onto another block; memories handed out before no longer apply.</summary>
    public void Point(byte* pointer, int length)
    {
        _pointer = pointer;
        _length = length;
    }

    public override Span<byte> GetSpan() => new(_pointer, _length);

    // The memory does not move: nothing to pin.
    public override MemoryHandle Pin(int elementIndex = 0) => new(_pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
