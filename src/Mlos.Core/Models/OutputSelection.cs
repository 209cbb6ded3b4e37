using System.Runtime.InteropServices;
using Mlos.Smi.Abi;

namespace Mlos.Core.Models;

/// <summary>
/// The outputs a request wants: NUL-terminated UTF-8 names the caller keeps valid for the call
/// (until an asynchronous call completes); none means every output. Passed to plugins with SMI
/// 1.3 (infer_selected), so they compute only those; for older plugins the core gives back the
/// others before the caller sees them.
/// </summary>
public readonly unsafe struct OutputSelection(byte** names, int count)
{
    public static OutputSelection All => default;

    public byte** Names { get; } = names;
    public int Count { get; } = count;
    public bool IsAll => Count == 0;

    public ReadOnlySpan<byte> Name(int i) => MemoryMarshal.CreateReadOnlySpanFromNullTerminated(Names[i]);

    public bool Contains(ReadOnlySpan<byte> name)
    {
        if (IsAll) return true;
        for (int i = 0; i < Count; i++)
            if (Name(i).SequenceEqual(name)) return true;
        return false;
    }

    /// <summary>The same names in the same order (how batched requests that may merge must agree).</summary>
    public bool SameAs(in OutputSelection other)
    {
        if (Count != other.Count) return false;
        if (Names == other.Names) return true;
        for (int i = 0; i < Count; i++)
            if (!Name(i).SequenceEqual(other.Name(i))) return false;
        return true;
    }

    /// <summary>Names present, each once, within what any model has.</summary>
    public void Check()
    {
        if (Count < 0 || Count > InferInputs.MaxInputs)
            throw new MlosException(SmiStatus.InvalidParam, $"{Count} requested outputs; at most {InferInputs.MaxInputs} are accepted");
        if (Count > 0 && Names == null) throw new MlosException(SmiStatus.InvalidParam, "requested output names are NULL");
        for (int i = 0; i < Count; i++)
        {
            if (Names[i] == null) throw new MlosException(SmiStatus.InvalidParam, $"requested output {i} has no name");
            for (int k = 0; k < i; k++)
                if (Name(k).SequenceEqual(Name(i)))
                    throw new MlosException(SmiStatus.InvalidParam, $"output '{Smi.Sdk.Utf8.Read(Names[i])}' is requested twice");
        }
    }
}
