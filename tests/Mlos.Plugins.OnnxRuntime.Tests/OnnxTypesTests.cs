using Microsoft.ML.OnnxRuntime.Tensors;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime.Tests;

public class OnnxTypesTests
{
    [Fact]
    public void Every_smi_dtype_maps_to_onnx_and_back()
    {
        foreach (var dtype in Enum.GetValues<SmiDtype>().Where(d => d != SmiDtype.Invalid))
            Assert.Equal(dtype, OnnxTypes.ToSmi(OnnxTypes.ToOnnx(dtype)));
        Assert.Equal(SmiDtype.Invalid, OnnxTypes.ToSmi(TensorElementType.Complex64));
        Assert.Equal(SmiStatus.InvalidParam, Assert.Throws<SmiException>(() => OnnxTypes.ToOnnx((SmiDtype)99)).Status);
    }
}
