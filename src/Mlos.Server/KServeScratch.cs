using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using Mlos.Smi.Abi;

namespace Mlos.Server;

/// <summary>
/// One request's working memory for v2 inference: input and output tensor arrays, a NUL-terminated
/// name arena, an arena for inputs decoded from JSON, and the response header's writer. Pooled: a
/// request rents one for its life (a batched request keeps it while it waits), so the hot path
/// allocates none of it.
/// </summary>
internal sealed unsafe class KServeScratch
{
    public const int MaxTensors = 64;
    private const int NameArenaBytes = 16 * 1024;

    private static readonly System.Collections.Concurrent.ConcurrentQueue<KServeScratch> s_pool = new();

    public static KServeScratch Rent()
    {
        var scratch = s_pool.TryDequeue(out var pooled) ? pooled : new KServeScratch();
        scratch.Reset();
        return scratch;
    }

    public static void Return(KServeScratch scratch) => s_pool.Enqueue(scratch);

    public readonly SmiTensor* Inputs = (SmiTensor*)NativeMemory.AllocZeroed(MaxTensors, (nuint)sizeof(SmiTensor));
    public readonly SmiTensor* Outputs = (SmiTensor*)NativeMemory.AllocZeroed(MaxTensors, (nuint)sizeof(SmiTensor));
    /// <summary>The outputs' capacity going in, their count coming out (native: it outlives awaits).</summary>
    public readonly nuint* OutputCount = (nuint*)NativeMemory.AllocZeroed(1, (nuint)sizeof(nuint));

    public ReadOnlySpan<SmiTensor> WrittenOutputs => new(Outputs, (int)Math.Min(*OutputCount, MaxTensors));
    private readonly byte* _names = (byte*)NativeMemory.Alloc(NameArenaBytes);
    private int _namesUsed;
    private byte* _data;
    private nuint _dataCapacity, _dataUsed;

    public ArrayBufferWriter<byte> Header { get; private set; } = new(4096);
    public Utf8JsonWriter Writer { get; private set; }
    /// <summary>Outputs the request asked for as binary, as byte ranges of its body.</summary>
    public readonly List<Range> BinaryOutputNames = new();

    private KServeScratch() => Writer = new Utf8JsonWriter(Header);

    /// <summary>Above this, a thread gives its buffers back after the request instead of keeping them.</summary>
    private const int KeepBytes = 1 << 20;

    private void Reset()
    {
        *OutputCount = 0;
        _namesUsed = 0;
        _dataUsed = 0;
        // One huge JSON request or answer must not pin its memory to a pool thread for good.
        if (Header.Capacity > KeepBytes)
        {
            Header = new ArrayBufferWriter<byte>(4096);
            Writer = new Utf8JsonWriter(Header);
        }
        if (_dataCapacity > KeepBytes)
        {
            NativeMemory.Free(_data);
            _data = null;
            _dataCapacity = 0;
        }
        BinaryOutputNames.Clear();
        NativeMemory.Clear(Outputs, (nuint)(MaxTensors * sizeof(SmiTensor)));
    }

    /// <summary>A NUL-terminated copy of a name, valid until the next request on this thread.</summary>
    public byte* Name(ReadOnlySpan<byte> utf8)
    {
        if (_namesUsed + utf8.Length + 1 > NameArenaBytes)
            throw new Core.MlosException(SmiStatus.InvalidParam, $"tensor names longer than {NameArenaBytes} bytes in all");
        byte* at = _names + _namesUsed;
        utf8.CopyTo(new Span<byte>(at, utf8.Length));
        at[utf8.Length] = 0;
        _namesUsed += utf8.Length + 1;
        return at;
    }

    /// <summary>Native room for an input decoded from JSON; the arena grows and is kept.</summary>
    public byte* Data(ReadOnlySpan<byte> bytes)
    {
        // Earlier inputs of this request point into the arena: grow only between requests.
        if (_dataUsed + (nuint)bytes.Length > _dataCapacity)
        {
            if (_dataUsed > 0) return CopyUnpooled(bytes);
            NativeMemory.Free(_data);
            _dataCapacity = Math.Max((nuint)bytes.Length, _dataCapacity * 2);
            _data = (byte*)NativeMemory.Alloc(_dataCapacity);
        }
        byte* at = _data + _dataUsed;
        bytes.CopyTo(new Span<byte>(at, bytes.Length));
        _dataUsed += (nuint)bytes.Length;
        return at;
    }

    private readonly List<nint> _unpooled = new();

    private byte* CopyUnpooled(ReadOnlySpan<byte> bytes)
    {
        var p = (byte*)NativeMemory.Alloc((nuint)Math.Max(1, bytes.Length));
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        _unpooled.Add((nint)p);
        return p;
    }

    /// <summary>Gives back what the plugin handed over, and memory taken outside the arena.</summary>
    public void ReleaseOutputs()
    {
        for (int i = 0; i < MaxTensors; i++)
        {
            SmiTensor* o = &Outputs[i];
            if (o->Release != null) o->Release(o);
        }
        foreach (var p in _unpooled) NativeMemory.Free((void*)p);
        _unpooled.Clear();
    }
}
