using System.Diagnostics.CodeAnalysis;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>What <see cref="JsonTensorValues.Read"/> found: the elements, the shape their nesting gives, the bytes appended.</summary>
public struct JsonTensorExtent
{
    internal SmiShape Shape;

    /// <summary>Elements decoded (1 for a scalar).</summary>
    public long Count { readonly get; internal set; }

    /// <summary>Bytes appended to the destination buffer.</summary>
    public nuint ByteSize { readonly get; internal set; }

    /// <summary>Nesting depth: 0 for a scalar, 1 for a flat array.</summary>
    public int Rank { readonly get; internal set; }

    /// <summary>The length of each nesting level, outermost first.</summary>
    [UnscopedRef]
    public readonly ReadOnlySpan<long> Dims => ((ReadOnlySpan<long>)Shape)[..Rank];
}
