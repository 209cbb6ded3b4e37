using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Xunit.Abstractions;

namespace Mlos.Smi.Tests;

/// <summary>The untyped MLOS convention over a typed "model" that doubles FP32 and echoes the rest.</summary>
public unsafe class MlosConventionTests(ITestOutputHelper log)
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

    /// <summary>Echoes every input as an output of the same name: what a request costs beyond the model.</summary>
    private static void Echo(ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs)
    {
        outputs.Reserve(inputs.Length);
        foreach (ref readonly var t in inputs)
            new ReadOnlySpan<byte>(t.Data, checked((int)t.ByteSize)).CopyTo(outputs.Add(t.Name, t.Dtype, t.Dims, t.ByteSize));
    }

    [Theory]
    [InlineData(SmiDtype.Bool, "[true,false,1,0]", "[true,false,true,false]")]
    [InlineData(SmiDtype.Int8, "[-128,127]", "[-128,127]")]
    [InlineData(SmiDtype.UInt8, "[0,255]", "[0,255]")]
    [InlineData(SmiDtype.Int16, "[-32768,32767]", "[-32768,32767]")]
    [InlineData(SmiDtype.UInt16, "[0,65535]", "[0,65535]")]
    [InlineData(SmiDtype.Int32, "[-2147483648,2147483647]", "[-2147483648,2147483647]")]
    [InlineData(SmiDtype.UInt32, "[0,4294967295]", "[0,4294967295]")]
    [InlineData(SmiDtype.Int64, "[-9223372036854775808,9223372036854775807]", "[-9223372036854775808,9223372036854775807]")]
    [InlineData(SmiDtype.UInt64, "[0,18446744073709551615]", "[0,18446744073709551615]")]
    [InlineData(SmiDtype.Fp16, "[1.5,-2,0.25]", "[1.5,-2,0.25]")]
    [InlineData(SmiDtype.Bf16, "[1.5,-2,0.25]", "[1.5,-2,0.25]")]
    [InlineData(SmiDtype.Fp32, "[1.5,-2,0.1]", "[1.5,-2,0.1]")]
    [InlineData(SmiDtype.Fp64, "[1.5,-2,0.1]", "[1.5,-2,0.1]")]
    [InlineData(SmiDtype.Bytes, """["hi","","\u00e9\n"]""", """["hi","","é\n"]""")] // answers escape only what JSON requires
    public void Every_dtype_json_carries_comes_back_as_sent(SmiDtype dtype, string values, string expected)
    {
        var output = new byte[4096];
        int n = MlosConvention.Run(Encoding.UTF8.GetBytes($"{{\"x\":{values}}}"), output, [Spec("x", dtype, -1)], Echo);
        var o = JsonDocument.Parse(output.AsMemory(0, n)).RootElement.GetProperty("outputs")[0];
        Assert.Equal(SmiDtypes.Name(dtype), o.GetProperty("datatype").GetString());
        Assert.Equal(expected, o.GetProperty("data").GetRawText());
    }

    [Theory]
    [InlineData("""{"x":["abc"]}""", SmiDtype.Fp32, "input 'x' (FP32) needs a number, not \"abc\"")]
    [InlineData("""{"x":[true]}""", SmiDtype.Fp32, "input 'x' (FP32) needs a number, not true")]
    [InlineData("""{"x":[300]}""", SmiDtype.UInt8, "input 'x' (UINT8) needs a UINT8, not 300")]
    [InlineData("""{"x":[1.5]}""", SmiDtype.Int64, "input 'x' (INT64) needs an INT64, not 1.5")]
    [InlineData("""{"x":[2]}""", SmiDtype.Bool, "input 'x' (BOOL) needs true, false, 0 or 1, not 2")]
    [InlineData("""{"x":[1]}""", SmiDtype.Bytes, "input 'x' is BYTES: its elements must be strings")]
    public void A_value_the_dtype_does_not_take_is_named_in_the_error(string json, SmiDtype dtype, string reason)
    {
        var e = Assert.Throws<SmiException>(() => MlosConvention.Run(Encoding.UTF8.GetBytes(json), new byte[256], [Spec("x", dtype, -1)], Echo));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains(reason, e.Message);
    }

    public static TheoryData<byte[]> NotUnicode()
    {
        // "a", then C3 28: a lead byte followed by a byte that cannot continue it
        byte[] brokenSequence = [.. "{\"x\":[\"a"u8, 0xC3, 0x28, .. "\"]}"u8];
        byte[] strayByte = [.. "{\"x\":[\"ok\",\""u8, 0xFF, .. "\"]}"u8];
        return new()
        {
            brokenSequence,
            strayByte,
            """{"x":["\ud800"]}"""u8.ToArray(),
            """{"x":["a\udc00b"]}"""u8.ToArray(),
        };
    }

    [Theory]
    [MemberData(nameof(NotUnicode))]
    public void A_bytes_string_that_is_not_unicode_is_a_bad_request(byte[] json)
    {
        foreach (SmiTensorSpec[] specs in new[] { [Spec("x", SmiDtype.Bytes, -1)], Array.Empty<SmiTensorSpec>() })
        {
            var e = Assert.Throws<SmiException>(() => MlosConvention.Run(json, new byte[256], specs, Echo));
            Assert.Equal(SmiStatus.InvalidParam, e.Status);
            Assert.Contains("not valid Unicode", e.Message);
        }
    }

    [Fact]
    public void Nesting_deeper_than_smi_max_dims_is_a_bad_request()
    {
        var json = $"{{\"x\":{new string('[', SmiVersion.MaxDims + 1)}1{new string(']', SmiVersion.MaxDims + 1)}}}";
        var e = Assert.Throws<SmiException>(() => MlosConvention.Run(Encoding.UTF8.GetBytes(json), new byte[256], [], Echo));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains($"more than {SmiVersion.MaxDims} dimensions", e.Message);
    }

    [Fact]
    public void Json_broken_after_a_request_error_is_still_tried_as_raw_bytes()
    {
        // 12 bytes: "y" is no input of the model, but the text is no JSON either, so it is three FP32s.
        var input = """{"y":[1]}abc"""u8.ToArray();
        Assert.Equal(12, MlosConvention.Run(input, new byte[12], [Spec("x", SmiDtype.Fp32, -1)], Echo));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3000)] // an answer of several writer chunks
    public void A_small_output_buffer_reports_the_exact_size_needed_and_that_size_is_enough(int count)
    {
        var body = Encoding.UTF8.GetBytes($"{{\"x\":[{string.Join(",", Enumerable.Range(0, count).Select(i => i * 0.37))}],\"s\":[\"{new string('w', 5000)}\"]}}");
        var specs = new[] { Spec("x", SmiDtype.Fp32, -1), Spec("s", SmiDtype.Bytes, -1) };
        var small = Assert.Throws<SmiException>(() => MlosConvention.Run(body, new byte[10], specs, Echo));
        Assert.Equal(SmiStatus.BufferTooSmall, small.Status);
        int needed = checked((int)small.RequiredSize);
        foreach (int capacity in new[] { needed - 1, needed / 2, needed - 4096 })
        {
            var e = Assert.Throws<SmiException>(() => MlosConvention.Run(body, new byte[Math.Max(capacity, 0)], specs, Echo));
            Assert.Equal((ulong)needed, e.RequiredSize);
        }
        var exact = new byte[needed];
        Assert.Equal(needed, MlosConvention.Run(body, exact, specs, Echo));
        var roomy = new byte[needed + 100];
        Assert.Equal(needed, MlosConvention.Run(body, roomy, specs, Echo));
        Assert.Equal(exact, roomy[..needed]);
        var o = JsonDocument.Parse(exact).RootElement.GetProperty("outputs");
        Assert.Equal(count, o[0].GetProperty("data").GetArrayLength());
        Assert.Equal(5000, o[1].GetProperty("data")[0].GetString()!.Length);
    }

    [Fact]
    public void A_40_MB_request_puts_nothing_of_its_size_on_the_managed_heap()
    {
        var body = LargeJson.Named("x", LargeJson.Floats(4_500_000));
        Assert.True(body.Length > 40_000_000);
        var output = new byte[body.Length + 1024];
        var specs = new[] { Spec("x", SmiDtype.Fp32, -1) };
        TypedInference echo = Echo;
        MlosConvention.Run("""{"x":[1.5]}"""u8, output, specs, echo); // first calls load types and JIT code

        long before = GC.GetAllocatedBytesForCurrentThread();
        int n = MlosConvention.Run(body, output, specs, echo);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        log.WriteLine($"Run allocated {allocated} managed bytes for a {body.Length}-byte request");
        Assert.True(allocated < 1_000_000, $"Run allocated {allocated} managed bytes for a {body.Length}-byte request");
        Assert.Equal((byte)'}', output[n - 1]);
    }
}
