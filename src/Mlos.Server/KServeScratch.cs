using System.Buffers;
using System.Runtime.InteropServices;
using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Server;

/// <summary>
/// One request's working memory for v2 inference: its body, input and output tensor arrays, a
/// NUL-terminated name arena, a buffer for inputs decoded from JSON, and the response header's writer. Pooled: a
/// request rents one for its life (a batched request keeps it while it waits), so the hot path
/// allocates none of it.
/// </summary>
internal sealed unsafe class KServeScratch
{
    public const int MaxTensors = 64;
    private const int NameArenaBytes = 16 * 1024;

    /// <summary>
    /// Scratches kept for reuse. A burst of concurrent requests makes one each; beyond this many the
    /// extra ones are freed on return, so a burst leaves at most this many behind (each small: its
    /// large buffers are given back on return too).
    /// </summary>
    private const int MaxPooled = 32;

    private static readonly System.Collections.Concurrent.ConcurrentQueue<KServeScratch> s_pool = new();
    private static int s_pooled;

    public static KServeScratch Rent()
    {
        if (s_pool.TryDequeue(out var scratch)) Interlocked.Decrement(ref s_pooled);
        else scratch = new KServeScratch();
        scratch.Reset();
        return scratch;
    }

    public static void Return(KServeScratch scratch)
    {
        scratch.Unpin();
        foreach (var lease in scratch._leases) lease.Dispose();
        scratch._leases.Clear();
        if (Interlocked.Increment(ref s_pooled) > MaxPooled)
        {
            Interlocked.Decrement(ref s_pooled);
            scratch.Free();
            return;
        }
        scratch.Trim();
        s_pool.Enqueue(scratch);
    }

    public readonly SmiTensor* Inputs = (SmiTensor*)NativeMemory.AllocZeroed(MaxTensors, (nuint)sizeof(SmiTensor));
    public readonly SmiTensor* Outputs = (SmiTensor*)NativeMemory.AllocZeroed(MaxTensors, (nuint)sizeof(SmiTensor));
    /// <summary>The outputs' capacity going in, their count coming out (native: it outlives awaits).</summary>
    public readonly nuint* OutputCount = (nuint*)NativeMemory.AllocZeroed(1, (nuint)sizeof(nuint));

    public ReadOnlySpan<SmiTensor> WrittenOutputs => new(Outputs, (int)Math.Min(*OutputCount, MaxTensors));
    private readonly byte* _names = (byte*)NativeMemory.Alloc(NameArenaBytes);
    private int _namesUsed;

    /// <summary>
    /// Inputs decoded from JSON, one after another. The buffer moves as it grows, so each input
    /// records where its bytes start and points at them once the whole header is read.
    /// </summary>
    public NativeBuffer Values { get; private set; } = new(4096);

    /// <summary>The request body; binary inputs point into it.</summary>
    public NativeBuffer Body { get; private set; } = new(4096);
    private readonly nuint[] _valueStarts = new nuint[MaxTensors];
    private readonly bool[] _hasValues = new bool[MaxTensors];

    /// <summary>The answer's JSON header, and its writer.</summary>
    public BlockWriter Header { get; } = new();
    public Utf8JsonWriter Writer { get; }
    /// <summary>The request's <c>"outputs"</c>: which to send (none listed: all) and which as binary data.</summary>
    public readonly List<RequestedOutput> RequestedOutputs = new();

    private KServeScratch() => Writer = new Utf8JsonWriter(Header, AnswerJson.WriterOptions);

    /// <summary>Input bytes this request has copied from shared-memory regions (bounded by the body limit).</summary>
    public long SharedInputBytes;

    private void Reset()
    {
        *OutputCount = 0;
        SharedInputBytes = 0;
        _namesUsed = 0;
        Array.Clear(_hasValues);
        Header.Reset();
        Values.Clear();
        RequestedOutputs.Clear();
        NativeMemory.Clear(Outputs, (nuint)(MaxTensors * sizeof(SmiTensor)));
    }

    /// <summary>On return to the pool: one huge JSON request or answer must not keep its memory there.</summary>
    private void Trim()
    {
        Header.Reset();
        Values = Small(Values);
        Body = Small(Body);
    }

    private static NativeBuffer Small(NativeBuffer buffer)
    {
        if (buffer.Capacity <= NativeHeap.LargeBytes) return buffer;
        buffer.Dispose();
        return new NativeBuffer(4096);
    }

    /// <summary>A scratch the pool has no room for: everything it holds goes back.</summary>
    private void Free()
    {
        Writer.Dispose();
        Header.Dispose();
        Values.Dispose();
        Body.Dispose();
        NativeMemory.Free(Inputs);
        NativeMemory.Free(Outputs);
        NativeMemory.Free(OutputCount);
        NativeMemory.Free(_names);
        NativeMemory.Free(_selected);
    }

    /// <summary>Longest tensor name accepted, in UTF-8 bytes (more than any model uses).</summary>
    public const int MaxNameBytes = 1024;

    /// <summary>
    /// A NUL-terminated copy of a tensor name, valid while the request holds this scratch; the one
    /// place the rules on names are checked, whichever front door read them.
    /// </summary>
    public byte* Name(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length > MaxNameBytes) throw new Core.MlosException(SmiStatus.InvalidParam, $"a tensor name is longer than {MaxNameBytes} bytes");
        // Names reach plugins as C strings: one with a NUL in it would silently name another tensor.
        if (utf8.IndexOf((byte)0) >= 0) throw new Core.MlosException(SmiStatus.InvalidParam, "a tensor name holds a NUL character");
        if (_namesUsed + utf8.Length + 1 > NameArenaBytes)
            throw new Core.MlosException(SmiStatus.InvalidParam, $"tensor names longer than {NameArenaBytes} bytes in all");
        byte* at = _names + _namesUsed;
        utf8.CopyTo(new Span<byte>(at, utf8.Length));
        at[utf8.Length] = 0;
        _namesUsed += utf8.Length + 1;
        return at;
    }

    /// <summary>A name from the request's list of outputs to send, at most <see cref="MaxTensors"/> (the core refuses one named twice).</summary>
    public void RequestOutput(ReadOnlySpan<byte> name, bool binary, SharedMemoryRegions.Lease? region = null, string? regionName = null)
    {
        if (RequestedOutputs.Count == MaxTensors)
            throw new Core.MlosException(SmiStatus.InvalidParam, $"more than {MaxTensors} requested outputs");
        var kept = Name(name);
        _selected[RequestedOutputs.Count] = kept;
        RequestedOutputs.Add(new RequestedOutput(kept, binary, region, regionName));
    }

    /// <summary>The requested outputs' names, as the core takes them (none listed: every output).</summary>
    private readonly byte** _selected = (byte**)NativeMemory.AllocZeroed(MaxTensors, (nuint)sizeof(byte*));

    public Core.Models.OutputSelection Selection => new(_selected, RequestedOutputs.Count);

    /// <summary>The request's entry for output <paramref name="name"/>, if it lists it.</summary>
    public RequestedOutput? Requested(ReadOnlySpan<byte> name)
    {
        foreach (var r in RequestedOutputs)
            if (r.NameSpan.SequenceEqual(name)) return r;
        return null;
    }

    /// <summary>Shared-memory leases the request's tensors point into, given back with the scratch.</summary>
    private readonly List<SharedMemoryRegions.Lease> _leases = new();

    public SharedMemoryRegions.Lease Hold(SharedMemoryRegions.Lease lease)
    {
        _leases.Add(lease);
        return lease;
    }

    /// <summary>Managed buffers the inputs point into (gRPC's raw contents), pinned while the request runs.</summary>
    private readonly System.Buffers.MemoryHandle[] _pins = new System.Buffers.MemoryHandle[MaxTensors];
    private int _pinned;

    /// <summary>A pointer to <paramref name="bytes"/> that stays valid until the scratch is returned.</summary>
    public byte* Pin(ReadOnlyMemory<byte> bytes)
    {
        var handle = bytes.Pin();
        _pins[_pinned++] = handle;
        return (byte*)handle.Pointer;
    }

    private void Unpin()
    {
        for (int i = 0; i < _pinned; i++) _pins[i].Dispose();
        Array.Clear(_pins, 0, _pinned);
        _pinned = 0;
    }

    /// <summary>Input <paramref name="index"/> holds <paramref name="size"/> bytes of <see cref="Values"/> from <paramref name="start"/>.</summary>
    public void PlaceValues(int index, nuint start, nuint size)
    {
        _valueStarts[index] = start;
        _hasValues[index] = true;
        Inputs[index].ByteSize = size;
    }

    /// <summary>Input <paramref name="index"/> is being read afresh: no JSON values of its own yet.</summary>
    public void ForgetValues(int index) => _hasValues[index] = false;

    /// <summary>Points the JSON-decoded inputs at their bytes, now that <see cref="Values"/> has stopped moving.</summary>
    public void PointAtValues(int count)
    {
        for (int i = 0; i < count; i++)
            if (_hasValues[i]) Inputs[i].Data = Values.Pointer + _valueStarts[i];
    }

    /// <summary>Gives back what the plugin handed over.</summary>
    public void ReleaseOutputs()
    {
        for (int i = 0; i < MaxTensors; i++)
        {
            SmiTensor* o = &Outputs[i];
            if (o->Release != null) o->Release(o);
        }
    }
}

/// <summary>
/// One entry of a request's <c>"outputs"</c>: its NUL-terminated name (in the scratch's name
/// arena), whether it goes as binary data, or the shared-memory region it is written into instead.
/// </summary>
internal readonly unsafe struct RequestedOutput(byte* name, bool binary, SharedMemoryRegions.Lease? region, string? regionName)
{
    public readonly byte* Name = name;
    public readonly bool Binary = binary;
    public readonly SharedMemoryRegions.Lease? Region = region;
    public readonly string? RegionName = regionName;
    public ReadOnlySpan<byte> NameSpan => System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(Name);
}
