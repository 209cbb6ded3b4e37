using System.Buffers.Binary;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// The core checks every typed request before a plugin sees it. The echo plugin would echo any
/// tensor it is given, so a lie that reaches it comes back as success: these must not.
/// </summary>
[Collection(PluginCollection.Name)]
public unsafe class InferInputsTests
{
    private static MlosException Refused(SmiDtype dtype, long[] shape, byte[] data, uint? ndim = null)
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("m", "csharp-echo", null);
        core.LoadModel("m");
        return Assert.Throws<MlosException>(() => Run(core, model, dtype, shape, data, ndim));
    }

    private static void Run(MlosCore core, Models.Model model, SmiDtype dtype, long[] shape, byte[] data, uint? ndim)
    {
        var input = new SmiTensor { Name = Utf8.Intern("x"), Dtype = dtype, NDim = ndim ?? (uint)shape.Length, ByteSize = (nuint)data.Length };
        shape.AsSpan(0, Math.Min(shape.Length, SmiVersion.MaxDims)).CopyTo(input.Shape);
        var outputs = new SmiTensor[1];
        fixed (byte* d = data)
        fixed (SmiTensor* o = outputs)
        {
            input.Data = d;
            nuint n = 1;
            core.Infer(model, &input, 1, o, &n);
            if (o->Release != null) o->Release(o);
        }
    }

    private static byte[] Strings(params string[] values)
    {
        var bytes = new List<byte>();
        foreach (var v in values)
        {
            var text = System.Text.Encoding.UTF8.GetBytes(v);
            var length = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(length, (uint)text.Length);
            bytes.AddRange(length);
            bytes.AddRange(text);
        }
        return bytes.ToArray();
    }

    /// <summary>
    /// An input named in optional_inputs (Triton's <c>optional</c>) may be left out: the core lets
    /// the request through and the plugin gives its own verdict (multi_io.onnx needs both, so ONNX
    /// Runtime refuses); without the option the core refuses it first, naming the input.
    /// </summary>
    [Fact]
    public void An_optional_input_may_be_left_out_and_the_plugin_decides()
    {
        using var core = new MlosCore();
        core.LoadPlugin(System.IO.Path.Combine(BuildTree.PluginDir, "libmlos_onnx_plugin.so"));
        var path = System.IO.Path.Combine(BuildTree.Models("onnx"), "multi_io.onnx");
        var strict = core.RegisterModel("strict", "onnx-runtime", path, """{"dynamic_batching":false}""");
        var lenient = core.RegisterModel("lenient", "onnx-runtime", path, """{"dynamic_batching":false,"optional_inputs":["features"]}""");
        core.LoadModel("strict");
        core.LoadModel("lenient");
        var ids = new long[8];
        var input = new SmiTensor { Name = Utf8.Intern("input_ids"), Dtype = SmiDtype.Int64, NDim = 2, ByteSize = 64 };
        input.Shape[0] = 1;
        input.Shape[1] = 8;
        MlosException Run(Models.Model model)
        {
            var outputs = new SmiTensor[4];
            fixed (long* d = ids)
            fixed (SmiTensor* o = outputs)
            {
                input.Data = d;
                nuint n = 4;
                var t = input;
                try { core.Infer(model, &t, 1, o, &n); }
                catch (MlosException e) { return e; }
                throw new Xunit.Sdk.XunitException("the request succeeded without its input 'features'");
            }
        }
        Assert.Equal("model 'strict' needs input 'features' (its inputs: input_ids, features)", Run(strict).Message);
        var plugin = Run(lenient);
        Assert.DoesNotContain("needs input", plugin.Message);
        Assert.Contains("features", plugin.Message); // ONNX Runtime's own reason
        Assert.Equal(["features"], lenient.OptionalInputs);
    }

    [Fact]
    public void Bytes_with_more_elements_than_length_prefixes_fit_is_refused()
    {
        var e = Refused(SmiDtype.Bytes, [100_000_000], Strings(""));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains("needs at least 400000000", e.Message);
    }

    [Fact]
    public void Bytes_whose_element_runs_past_the_data_is_refused()
    {
        var data = Strings("abc", "de");
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(7), 1000); // the second length lies
        Assert.Contains("claims 1000 bytes past the end", Refused(SmiDtype.Bytes, [2], data).Message);
        Assert.Contains("bytes after its 1 elements", Refused(SmiDtype.Bytes, [1], Strings("abc", "de")).Message);
    }

    [Fact]
    public void A_shape_whose_element_count_overflows_is_refused_not_wrapped()
    {
        var e = Refused(SmiDtype.Fp32, [1L << 60, 16], []);
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains("does not fit in 64 bits", e.Message);
        Assert.Contains("needs more than 2^63", Refused(SmiDtype.Fp32, [1L << 62], new byte[4]).Message);
    }

    [Fact]
    public void Fixed_size_bytes_must_match_the_shape_and_rank_is_bounded()
    {
        Assert.Contains("has 8 bytes; shape [3] of FP32 needs 12", Refused(SmiDtype.Fp32, [3], new byte[8]).Message);
        Assert.Contains("at most 8 are allowed", Refused(SmiDtype.Fp32, [1], new byte[4], ndim: 9).Message);
        Assert.Contains("negative dimension", Refused(SmiDtype.Fp32, [-1], new byte[4]).Message);
    }

    [Fact]
    public void Well_formed_bytes_reach_the_plugin()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("m", "csharp-echo", null);
        core.LoadModel("m");
        Run(core, model, SmiDtype.Bytes, [2], Strings("abc", ""), null);
    }

    [Fact]
    public void Registrations_past_max_models_are_refused()
    {
        using var core = new MlosCore { MaxModels = 1 };
        core.LoadPlugin(BuildTree.EchoPlugin);
        core.RegisterModel("a", "csharp-echo", null);
        var e = Assert.Throws<MlosException>(() => core.RegisterModel("b", "csharp-echo", null));
        Assert.Equal(SmiStatus.InvalidState, e.Status);
        core.UnregisterModel("a");
        core.RegisterModel("b", "csharp-echo", null);
    }
}
