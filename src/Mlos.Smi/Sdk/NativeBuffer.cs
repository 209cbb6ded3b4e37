using System.Runtime.InteropServices;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// Growable native memory for tensor data decoded from a request. It stays off the managed heap
/// because each plugin is its own NativeAOT runtime whose GC seldom gives a burst back to the
/// system; native memory goes back the moment it is freed (<see cref="TensorMemory"/>). The owner frees it with
/// <see cref="Dispose"/>. The block moves as it grows: read <see cref="Pointer"/> after the last
/// append.
/// </summary>
public sealed unsafe class NativeBuffer : IDisposable
{
    private const nuint DefaultCapacity = 256;

    private byte* _data;
    private nuint _length, _capacity;

    /// <summary>Takes <paramref name="capacity"/> bytes (at least one, so <see cref="Pointer"/> is never NULL).</summary>
    public NativeBuffer(nuint capacity = DefaultCapacity)
    {
        _capacity = Math.Max(capacity, 1);
        _data = (byte*)TensorMemory.Alloc(_capacity);
    }

    /// <summary>The first byte; valid until the next <see cref="Reserve"/> or <see cref="Dispose"/>.</summary>
    public byte* Pointer => _data;

    /// <summary>Bytes appended so far.</summary>
    public nuint Length => _length;

    /// <summary>Bytes held, appended or not.</summary>
    public nuint Capacity => _capacity;

    /// <summary>
    /// Room for <paramref name="bytes"/> more after <see cref="Length"/>, growing geometrically;
    /// the room is claimed by <see cref="Advance"/>.
    /// </summary>
    public byte* Reserve(nuint bytes)
    {
        nuint needed = _length + bytes;
        if (needed < _length)
            throw new SmiException(SmiStatus.OutOfMemory, $"a buffer of {_length} bytes cannot grow by {bytes} more");
        if (needed > _capacity)
        {
            nuint doubled = _capacity <= nuint.MaxValue / 2 ? _capacity * 2 : nuint.MaxValue;
            nuint capacity = Math.Max(needed, doubled);
            _data = (byte*)TensorMemory.Grow(_data, _length, capacity);
            _capacity = capacity;
        }
        return _data + _length;
    }

    /// <summary>Claims <paramref name="bytes"/> of the room <see cref="Reserve"/> gave.</summary>
    public void Advance(nuint bytes)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, _capacity - _length);
        _length += bytes;
    }

    /// <summary>Forgets what was appended and keeps the memory, for reuse.</summary>
    public void Clear() => _length = 0;

    public void Dispose()
    {
        TensorMemory.Free(_data);
        _data = null;
        _length = _capacity = 0;
    }
}
