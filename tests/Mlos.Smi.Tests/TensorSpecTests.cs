using System.Text;
using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Smi.Tests;

public unsafe class TensorSpecTests
{
    [Fact]
    public void A_known_spec_goes_to_the_abi_with_its_interned_name_dtype_and_dims()
    {
        var spec = new TensorSpec("features", SmiDtype.Fp32, [-1, 16]);
        var smi = spec.ToSmi();
        Assert.True(smi.Name == Utf8.Intern("features"));
        Assert.True(smi.Name == spec.NativeName);
        Assert.Equal("features", Utf8.Read(smi.Name));
        Assert.Equal(SmiDtype.Fp32, smi.Dtype);
        Assert.Equal(2u, smi.NDim);
        Assert.Equal([-1L, 16L], smi.Dims.ToArray());
    }

    [Fact]
    public void An_unknown_spec_is_invalid_dtype_and_rank_zero()
    {
        var smi = new TensorSpec("x", SmiDtype.Invalid, null).ToSmi();
        Assert.Equal(SmiDtype.Invalid, smi.Dtype);
        Assert.Equal(0u, smi.NDim);
        Assert.Equal(new long[SmiVersion.MaxDims], ((ReadOnlySpan<long>)smi.Shape).ToArray());
    }

    [Fact]
    public void Dims_past_max_dims_are_cut_to_max_dims()
    {
        var dims = Enumerable.Range(1, SmiVersion.MaxDims + 3).Select(d => (long)d).ToArray();
        var smi = new TensorSpec("deep", SmiDtype.Int64, dims).ToSmi();
        Assert.Equal((uint)SmiVersion.MaxDims, smi.NDim);
        Assert.Equal(dims[..SmiVersion.MaxDims], smi.Dims.ToArray());
    }

    private static string Json(Action<Utf8JsonWriter> write)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    [Fact]
    public void Known_specs_write_name_datatype_and_shape()
    {
        // What the ONNX plugin's model info always wrote: every field, dynamic dims as -1.
        TensorSpec[] specs = [new("input_ids", SmiDtype.Int64, [-1, 128]), new("scalar", SmiDtype.Bytes, [])];
        Assert.Equal("""{"inputs":[{"name":"input_ids","datatype":"INT64","shape":[-1,128]},{"name":"scalar","datatype":"BYTES","shape":[]}]}""",
            Json(w => TensorSpecJson.Write(w, "inputs", specs)));
    }

    [Fact]
    public void What_is_unknown_is_left_out()
    {
        // What the Torch plugin's model info wrote: a name only from the forward signature, a dtype or shape when declared.
        TensorSpec[] specs = [new("a", SmiDtype.Invalid, null), new("b", SmiDtype.Fp16, null), new("c", SmiDtype.Invalid, [2, -1])];
        Assert.Equal("""{"outputs":[{"name":"a"},{"name":"b","datatype":"FP16"},{"name":"c","shape":[2,-1]}]}""",
            Json(w => TensorSpecJson.Write(w, "outputs", specs)));
        Assert.Equal("""{"inputs":[]}""", Json(w => TensorSpecJson.Write(w, "inputs", [])));
    }
}
