using Microsoft.ML.OnnxRuntime.Tensors;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>SMI dtypes and ONNX Runtime element types, both ways, with element sizes.</summary>
internal static class OnnxTypes
{
    public static SmiDtype ToSmi(TensorElementType t) => t switch
    {
        TensorElementType.Bool => SmiDtype.Bool,
        TensorElementType.UInt8 => SmiDtype.UInt8,
        TensorElementType.UInt16 => SmiDtype.UInt16,
        TensorElementType.UInt32 => SmiDtype.UInt32,
        TensorElementType.UInt64 => SmiDtype.UInt64,
        TensorElementType.Int8 => SmiDtype.Int8,
        TensorElementType.Int16 => SmiDtype.Int16,
        TensorElementType.Int32 => SmiDtype.Int32,
        TensorElementType.Int64 => SmiDtype.Int64,
        TensorElementType.Float16 => SmiDtype.Fp16,
        TensorElementType.Float => SmiDtype.Fp32,
        TensorElementType.Double => SmiDtype.Fp64,
        TensorElementType.BFloat16 => SmiDtype.Bf16,
        TensorElementType.String => SmiDtype.Bytes,
        _ => SmiDtype.Invalid,
    };

    public static TensorElementType ToOnnx(SmiDtype t) => t switch
    {
        SmiDtype.Bool => TensorElementType.Bool,
        SmiDtype.UInt8 => TensorElementType.UInt8,
        SmiDtype.UInt16 => TensorElementType.UInt16,
        SmiDtype.UInt32 => TensorElementType.UInt32,
        SmiDtype.UInt64 => TensorElementType.UInt64,
        SmiDtype.Int8 => TensorElementType.Int8,
        SmiDtype.Int16 => TensorElementType.Int16,
        SmiDtype.Int32 => TensorElementType.Int32,
        SmiDtype.Int64 => TensorElementType.Int64,
        SmiDtype.Fp16 => TensorElementType.Float16,
        SmiDtype.Fp32 => TensorElementType.Float,
        SmiDtype.Fp64 => TensorElementType.Double,
        SmiDtype.Bf16 => TensorElementType.BFloat16,
        SmiDtype.Bytes => TensorElementType.String,
        _ => throw new SmiException(SmiStatus.InvalidParam, $"dtype {(int)t} is not an SMI dtype"),
    };
}
