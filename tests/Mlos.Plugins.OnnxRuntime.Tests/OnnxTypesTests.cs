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

    [Theory]
    [InlineData(new long[] { -1, 16 }, 48, new long[] { 3, 16 })]
    [InlineData(new long[] { 2, 3 }, 6, new long[] { 2, 3 })]
    [InlineData(new long[] { -1 }, 5, new long[] { 5 })]
    public void One_dynamic_dimension_is_inferred(long[] dims, long count, long[] expected)
    {
        var spec = new IoSpec("x", SmiDtype.Fp32, dims);
        Assert.Equal(expected, OnnxRunner.InferShape(spec, count));
    }

    [Theory]
    [InlineData(new long[] { -1, 16 }, 47, "does not fit")]
    [InlineData(new long[] { 2, 3 }, 7, "does not fit")]
    [InlineData(new long[] { -1, 3, -1, -1 }, 27, "several dynamic dimensions")]
    public void Shapes_that_cannot_be_inferred_are_refused(long[] dims, long count, string reason)
    {
        var e = Assert.Throws<SmiException>(() => OnnxRunner.InferShape(new IoSpec("x", SmiDtype.Fp32, dims), count));
        Assert.Contains(reason, e.Message);
    }
}
