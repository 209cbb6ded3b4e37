using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using TorchSharp;

namespace Mlos.Plugins.TorchSharp;

/// <summary>SMI dtypes and torch scalar types, both ways.</summary>
internal static class TorchTypes
{
    public static torch.ScalarType ToTorch(SmiDtype t) => t switch
    {
        SmiDtype.Bool => torch.ScalarType.Bool,
        SmiDtype.UInt8 => torch.ScalarType.Byte,
        SmiDtype.Int8 => torch.ScalarType.Int8,
        SmiDtype.Int16 => torch.ScalarType.Int16,
        SmiDtype.Int32 => torch.ScalarType.Int32,
        SmiDtype.Int64 => torch.ScalarType.Int64,
        SmiDtype.Fp16 => torch.ScalarType.Float16,
        SmiDtype.Bf16 => torch.ScalarType.BFloat16,
        SmiDtype.Fp32 => torch.ScalarType.Float32,
        SmiDtype.Fp64 => torch.ScalarType.Float64,
        _ => throw new SmiException(SmiStatus.InvalidParam, $"libtorch has no tensor type for {SmiDtypes.Name(t)}"),
    };

    public static SmiDtype ToSmi(torch.ScalarType t) => t switch
    {
        torch.ScalarType.Bool => SmiDtype.Bool,
        torch.ScalarType.Byte => SmiDtype.UInt8,
        torch.ScalarType.Int8 => SmiDtype.Int8,
        torch.ScalarType.Int16 => SmiDtype.Int16,
        torch.ScalarType.Int32 => SmiDtype.Int32,
        torch.ScalarType.Int64 => SmiDtype.Int64,
        torch.ScalarType.Float16 => SmiDtype.Fp16,
        torch.ScalarType.BFloat16 => SmiDtype.Bf16,
        torch.ScalarType.Float32 => SmiDtype.Fp32,
        torch.ScalarType.Float64 => SmiDtype.Fp64,
        _ => throw new SmiException(SmiStatus.NotSupported, $"the model returned a {t} tensor, which SMI cannot carry"),
    };
}
