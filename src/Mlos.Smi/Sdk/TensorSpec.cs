using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>
/// A model input or output as a plugin declares it: a name, and a dtype and dims where known
/// (<see cref="SmiDtype.Invalid"/>: any dtype; null dims: any shape; a -1 dim: any size). The
/// name is interned, so <see cref="ToSmi"/> can hand out a pointer the ABI may keep.
/// </summary>
public sealed unsafe class TensorSpec(string name, SmiDtype dtype, long[]? dims)
{
    public string Name { get; } = name;
    public byte* NativeName { get; } = Utf8.Intern(name);
    public SmiDtype Dtype { get; } = dtype;
    public long[]? Dims { get; } = dims;

    /// <summary>The ABI spec; more dims than SMI_MAX_DIMS are cut to that many, unknown dims are rank 0.</summary>
    public SmiTensorSpec ToSmi()
    {
        var spec = new SmiTensorSpec { Name = NativeName, Dtype = Dtype, NDim = (uint)Math.Min(Dims?.Length ?? 0, SmiVersion.MaxDims) };
        Dims?.AsSpan(0, (int)spec.NDim).CopyTo(spec.Shape);
        return spec;
    }
}
