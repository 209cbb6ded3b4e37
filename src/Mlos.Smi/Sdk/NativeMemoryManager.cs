using System.Buffers;

namespace Mlos.Smi.Sdk;

/// <summary>
/// <see cref="Memory{T}"/> over native memory someone else owns, for APIs such as
/// <see cref="System.Text.Json.Utf8JsonWriter"/> that write through an <see cref="IBufferWriter{T}"/>.
/// </summary>
internal sealed unsafe class NativeMemoryManager(byte* pointer, int length) : MemoryManager<byte>
{
    public override Span<byte> GetSpan() => new(pointer, length);

    // The memory does not move: nothing to pin.
    public override MemoryHandle Pin(int elementIndex = 0) => new(pointer + elementIndex);

    public override void Unpin() { }

    protected override void Dispose(bool disposing) { }
}
