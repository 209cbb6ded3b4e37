using System.Runtime.InteropServices;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// The outputs array of a typed infer call, with the ownership rule of smi_spec.h applied:
/// a slot the caller gave a buffer is written in place; an empty slot gets native memory that
/// the caller frees through <c>release</c>. On failure the SDK frees what was allocated here.
/// </summary>
public unsafe ref struct SmiOutputs
{
    private readonly SmiTensor* _slots;
    private readonly int _capacity;
    private int _count;

    /// <summary>
    /// Wraps <paramref name="capacity"/> slots; what each slot holds on entry decides its
    /// ownership (see smi_spec.h). Public for in-process callers of typed inference.
    /// </summary>
    public SmiOutputs(SmiTensor* slots, int capacity)
    {
        _slots = slots;
        _capacity = capacity;
    }

    /// <summary>
    /// The same, for a call that wants only the outputs named in <paramref name="selected"/>
    /// (SMI 1.3 infer_selected; a count of 0 means all): see <see cref="Wants(byte*)"/>.
    /// </summary>
    public SmiOutputs(SmiTensor* slots, int capacity, byte** selected, int selectedCount) : this(slots, capacity)
    {
        _selected = selected;
        _selectedCount = selectedCount;
    }

    private readonly byte** _selected;
    private readonly int _selectedCount;

    /// <summary>Whether the caller wants every output (no selection).</summary>
    public readonly bool WantsAll => _selectedCount == 0;

    /// <summary>
    /// Whether the caller wants output <paramref name="name"/>: a plugin that can compute outputs
    /// one by one skips the others. One that cannot may write them all: the SDK drops the rest.
    /// </summary>
    public readonly bool Wants(byte* name) => _selectedCount == 0 || IndexOfSelected(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(name)) >= 0;

    private readonly int IndexOfSelected(ReadOnlySpan<byte> name)
    {
        for (int i = 0; i < _selectedCount; i++)
            if (System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(_selected[i]).SequenceEqual(name)) return i;
        return -1;
    }

    /// <summary>
    /// After the plugin wrote its outputs: only the selected ones stay (first, in the order the
    /// plugin wrote them; the others are released and their slots moved behind), and every
    /// selected name must be among them.
    /// </summary>
    internal void KeepSelected()
    {
        if (_selectedCount == 0) return;
        int kept = 0;
        for (int i = 0; i < _count; i++)
        {
            SmiTensor* t = &_slots[i];
            var name = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(t->Name);
            bool again = false;
            for (int k = 0; k < kept && !again; k++)
                again = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(_slots[k].Name).SequenceEqual(name);
            if (again || IndexOfSelected(name) < 0)
            {
                // Not wanted (or written twice): plugin memory is given back; a caller's buffer stays in the array, unused.
                if (t->Release != null)
                {
                    t->Release(t);
                    t->Release = null;
                    t->Data = null;
                    t->ByteSize = 0;
                }
                continue;
            }
            if (i != kept) (_slots[kept], _slots[i]) = (_slots[i], _slots[kept]);
            kept++;
        }
        _count = kept;
        for (int s = 0; s < _selectedCount; s++)
        {
            bool found = false;
            for (int i = 0; i < _count && !found; i++)
                found = System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(_slots[i].Name)
                    .SequenceEqual(System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpanFromNullTerminated(_selected[s]));
            if (!found)
                throw new SmiException(SmiStatus.InvalidParam, $"the model has no output '{Utf8.Read(_selected[s])}'");
        }
    }

    /// <summary>Number of slots the caller provided.</summary>
    public readonly int Capacity => _capacity;

    /// <summary>Number of outputs written so far.</summary>
    public readonly int Count => _count;

    /// <summary>Set by <see cref="Reserve"/> when the caller's array is too small.</summary>
    internal int RequiredCount { get; private set; }

    /// <summary>
    /// Declares how many outputs the model will write; fails with BufferTooSmall (and tells the
    /// caller the count through <c>*num_outputs</c>) before anything is allocated.
    /// </summary>
    public void Reserve(int outputCount)
    {
        if (outputCount <= _capacity) return;
        RequiredCount = outputCount;
        throw new SmiException(SmiStatus.BufferTooSmall, $"outputs array too small: the model has {outputCount} outputs, capacity is {_capacity}");
    }

    /// <summary>
    /// Claims the next output slot and returns its memory, <paramref name="byteSize"/> bytes, for
    /// the plugin to fill. <paramref name="name"/> must be plugin-owned (see <see cref="Utf8.Intern"/>).
    /// </summary>
    public Span<byte> Add(byte* name, SmiDtype dtype, ReadOnlySpan<long> shape, nuint byteSize)
    {
        if (shape.Length > SmiVersion.MaxDims)
            throw new SmiException(SmiStatus.NotSupported, $"output rank {shape.Length} exceeds SMI_MAX_DIMS ({SmiVersion.MaxDims})");
        if (_count >= _capacity) Reserve(_count + 1);
        SmiTensor* t = &_slots[_count];
        if (t->Data != null)
        {
            if (t->ByteSize < byteSize)
            {
                var given = t->ByteSize;
                t->ByteSize = byteSize;
                throw SmiException.BufferTooSmall(byteSize, given, $"output {_count} ({Utf8.Read(name)})");
            }
            t->Release = null;
        }
        else
        {
            t->Data = TensorMemory.Alloc(byteSize);
            t->Release = &FreeOutput;
            t->MemoryType = SmiMemoryType.Cpu;
            t->DeviceId = 0;
        }
        Describe(t, name, dtype, shape, byteSize);
        t->ReleaseContext = null;
        _count++;
        return new Span<byte>(t->Data, checked((int)byteSize));
    }

    private static void Describe(SmiTensor* t, byte* name, SmiDtype dtype, ReadOnlySpan<long> shape, nuint byteSize)
    {
        if (shape.Length > SmiVersion.MaxDims)
            throw new SmiException(SmiStatus.NotSupported, $"output rank {shape.Length} exceeds SMI_MAX_DIMS ({SmiVersion.MaxDims})");
        t->Name = name;
        t->Dtype = dtype;
        t->NDim = (uint)shape.Length;
        t->Shape = default;
        shape.CopyTo(t->Shape);
        t->ByteSize = byteSize;
    }

    /// <summary>
    /// Claims the next output slot for memory the plugin already holds (a framework's output
    /// buffer), so that an empty slot takes it over without a copy: the caller's
    /// <c>release(t)</c> then calls <paramref name="release"/>. Returns false when the caller gave
    /// a buffer instead: the data has been copied into it and the plugin keeps its memory.
    /// </summary>
    public bool AddOwned(byte* name, SmiDtype dtype, ReadOnlySpan<long> shape, void* data, nuint byteSize,
        delegate* unmanaged<SmiTensor*, void> release, void* releaseContext)
    {
        if (_count < _capacity && _slots[_count].Data == null)
        {
            SmiTensor* t = &_slots[_count];
            Describe(t, name, dtype, shape, byteSize);
            t->Data = data;
            t->Release = release;
            t->ReleaseContext = releaseContext;
            t->MemoryType = SmiMemoryType.Cpu;
            t->DeviceId = 0;
            _count++;
            return true;
        }
        new ReadOnlySpan<byte>(data, checked((int)byteSize)).CopyTo(Add(name, dtype, shape, byteSize));
        return false;
    }

    /// <summary>Frees what this call handed out; used when the plugin fails part-way.</summary>
    internal readonly void ReleaseAllocated()
    {
        for (int i = 0; i < _count; i++)
        {
            SmiTensor* t = &_slots[i];
            if (t->Release != null) t->Release(t);
        }
    }

    /// <summary>
    /// The <c>release</c> of an output whose data is one <see cref="TensorMemory.Alloc"/> block:
    /// frees it and clears the slot. For others that hand out such outputs (the core's batcher).
    /// </summary>
    public static delegate* unmanaged<SmiTensor*, void> FreeNativeOutput => &FreeOutput;

    [UnmanagedCallersOnly]
    private static void FreeOutput(SmiTensor* t)
    {
        if (t == null) return;
        TensorMemory.Free(t->Data);
        t->Data = null;
        t->Release = null;
    }
}
