using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Smi.Tests;

/// <summary>The untyped MLOS convention over a typed "model" that doubles FP32 and echoes the rest.</summary>
public unsafe class MlosConventionTests
{
    private static SmiTensorSpec Spec(string name, SmiDtype dtype, params long[] dims)
    {
        var s = new SmiTensorSpec { Name = Utf8.Intern(name), Dtype = dtype, NDim = (uint)dims.Length };
        dims.CopyTo(s.Shape);
        return s;
    }

    /// <summary>Doubles FP32 inputs, echoes the others, as output_N.</summary>
    private static void Model(ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs)
    {
        outputs.Reserve(inputs.Length);
        for (int i = 0; i < inputs.Length; i++)
        {
            ref readonly var t = ref inputs[i];
            var dst = outputs.Add(Utf8.Intern($"output_{i}"), t.Dtype, t.Dims, t.ByteSize);
            new ReadOnlySpan<byte>(t.Data, (int)t.ByteSize).CopyTo(dst);
            if (t.Dtype == SmiDtype.Fp32)
                for (int k = 0; k < dst.Length; k += 4)
                    BinaryPrimitives.WriteSingleLittleEndian(dst[k..], 2 * BinaryPrimitives.ReadSingleLittleEndian(dst[k..]));
        }
    }

    private static JsonElement Run(string json, params SmiTensorSpec[] specs)
    {
        var output = new byte[4096];
        int n = MlosConvention.Run(Encoding.UTF8.GetBytes(json), output, specs, Model);
        return JsonDocument.Parse(output.AsMemory(0, n)).RootElement.GetProperty("outputs");
    }

    [Fact]
    public void Nested_arrays_give_the_shape_and_the_model_gives_the_dtype()
    {
        var o = Run("""{"x":[[1,2],[3,4]]}""", Spec("x", SmiDtype.Fp32, -1, 2))[0];
        Assert.Equal("FP32", o.GetProperty("datatype").GetString());
        Assert.Equal("[2,2]", o.GetProperty("shape").GetRawText());
        Assert.Equal("[2,4,6,8]", o.GetProperty("data").GetRawText());
    }

    [Fact]
    public void A_flat_array_takes_the_models_shape()
    {
        var o = Run("""{"x":[1,2,3,4,5,6]}""", Spec("x", SmiDtype.Int64, -1, 3))[0];
        Assert.Equal("[2,3]", o.GetProperty("shape").GetRawText());
        Assert.Equal("[1,2,3,4,5,6]", o.GetProperty("data").GetRawText());
    }

    [Fact]
    public void Without_declared_specs_integers_are_int64_decimals_fp32_strings_bytes()
    {
        var o = Run("""{"a":[1,2],"b":[0.5],"c":["hi","there"],"d":[true]}""");
        Assert.Equal(["INT64", "FP32", "BYTES", "BOOL"], o.EnumerateArray().Select(e => e.GetProperty("datatype").GetString()));
        Assert.Equal("""["hi","there"]""", o[2].GetProperty("data").GetRawText());
        Assert.Equal("[1]", o[1].GetProperty("data").GetRawText());
    }

    [Fact]
    public void Raw_bytes_of_a_single_input_come_back_raw()
    {
        var input = new byte[8];
        BinaryPrimitives.WriteSingleLittleEndian(input, 1.5f);
        BinaryPrimitives.WriteSingleLittleEndian(input.AsSpan(4), -2f);
        var output = new byte[8];
        Assert.Equal(8, MlosConvention.Run(input, output, [Spec("x", SmiDtype.Fp32, -1)], Model));
        Assert.Equal(3f, BinaryPrimitives.ReadSingleLittleEndian(output));
        Assert.Equal(-4f, BinaryPrimitives.ReadSingleLittleEndian(output.AsSpan(4)));
    }

    [Theory]
    [InlineData("""{"x":[[1,2],[3]]}""", "not a rectangular array")]
    [InlineData("""{"y":[1]}""", "has no input 'y' (inputs: x)")]
    [InlineData("""{"x":["a","b"]}""", "(FP32) needs a number")]
    [InlineData("""{"x":[1,2,3]}""", "3 elements does not fit the model's shape [-1,2]")]
    [InlineData("""{"x":[[[1,2]]]}""", "rank 3; the model expects rank 2")]
    [InlineData("""{"x": [1,""", "is not valid JSON")]
    [InlineData("""[1,2]""", "not a whole number of FP32")]
    public void Bad_requests_say_what_is_wrong(string json, string reason)
    {
        var e = Assert.Throws<SmiException>(() => MlosConvention.Run(Encoding.UTF8.GetBytes(json), new byte[256], [Spec("x", SmiDtype.Fp32, -1, 2)], Model));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void A_small_output_buffer_reports_the_size_needed()
    {
        var e = Assert.Throws<SmiException>(() => MlosConvention.Run("""{"x":[[1,2]]}"""u8.ToArray(), new byte[10], [Spec("x", SmiDtype.Fp32, -1, 2)], Model));
        Assert.Equal(SmiStatus.BufferTooSmall, e.Status);
        Assert.True(e.RequiredSize > 10);
    }

    [Theory]
    [InlineData(new long[] { -1, 16 }, 48, new long[] { 3, 16 })]
    [InlineData(new long[] { 2, 3 }, 6, new long[] { 2, 3 })]
    [InlineData(new long[] { -1 }, 5, new long[] { 5 })]
    public void One_dynamic_dimension_is_inferred(long[] dims, long count, long[] expected) =>
        Assert.Equal(expected, MlosConvention.InferShape("x", dims, count));

    [Fact]
    public void Several_dynamic_dimensions_cannot_be_inferred()
    {
        var e = Assert.Throws<SmiException>(() => MlosConvention.InferShape("x", [-1, 3, -1, -1], 27));
        Assert.Contains("several dynamic dimensions", e.Message);
    }

    [Theory]
    [InlineData(new long[] { 4294967297, 4294967297, -1 }, 8589934593)] // the product wraps to 2^33+1
    [InlineData(new long[] { 4294967297, 4294967297 }, 8589934593)]
    [InlineData(new long[] { 3037000500, 3037000500, -1 }, 1)] // the product wraps negative
    public void A_model_shape_too_large_to_count_is_refused_not_wrapped(long[] dims, long count)
    {
        var e = Assert.Throws<SmiException>(() => MlosConvention.InferShape("x", dims, count));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains("more elements than a tensor can hold", e.Message);
    }
}
