using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Mlos.Tests;
using TorchSharp;

namespace Mlos.Plugins.TorchSharp.Tests;

public class TorchConfigTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("test-config")]
    public void Labels_mean_defaults(string? config) => Assert.Same(TorchConfig.Defaults, TorchConfig.Parse(config, TorchConfig.Defaults));

    [Fact]
    public void Options_are_read_over_the_basis()
    {
        var c = TorchConfig.Parse("""{"device":"cuda","num_threads":2,"libtorch_dir":"/opt/libtorch/lib","inputs":[]}""", TorchConfig.Defaults);
        Assert.Equal("cuda:0", c.Device);
        Assert.Equal(2, c.NumThreads);
        Assert.Equal("/opt/libtorch/lib", c.LibtorchDir);
        Assert.True(TorchConfig.Parse("""{"allow_cpu_fallback":true}""", c).AllowCpuFallback);
    }

    [Theory]
    [InlineData("""{"device":"gpu"}""", "device must be \"cpu\" or \"cuda:N\"")]
    [InlineData("""{"num_threads":-2}""", "num_threads must be a non-negative integer")]
    [InlineData("""{"libtorch_dir":3}""", "libtorch_dir must be a folder path")]
    [InlineData("""{"allow_cpu_fallback":1}""", "allow_cpu_fallback must be true or false")]
    [InlineData("{", "not valid JSON")]
    public void Bad_options_are_invalid_params(string json, string reason)
    {
        var e = Assert.Throws<SmiException>(() => TorchConfig.Parse(json, TorchConfig.Defaults));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains(reason, e.Message);
    }
}

public class TorchTypesTests
{
    [Theory]
    [InlineData(SmiDtype.Bool)]
    [InlineData(SmiDtype.UInt8)]
    [InlineData(SmiDtype.Int8)]
    [InlineData(SmiDtype.Int16)]
    [InlineData(SmiDtype.Int32)]
    [InlineData(SmiDtype.Int64)]
    [InlineData(SmiDtype.Fp16)]
    [InlineData(SmiDtype.Bf16)]
    [InlineData(SmiDtype.Fp32)]
    [InlineData(SmiDtype.Fp64)]
    public void Dtypes_map_to_torch_and_back(SmiDtype dtype) => Assert.Equal(dtype, TorchTypes.ToSmi(TorchTypes.ToTorch(dtype)));

    [Theory]
    [InlineData(SmiDtype.UInt16)]
    [InlineData(SmiDtype.UInt64)]
    [InlineData(SmiDtype.Bytes)]
    public void Dtypes_libtorch_lacks_are_refused(SmiDtype dtype)
    {
        var e = Assert.Throws<SmiException>(() => TorchTypes.ToTorch(dtype));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains("libtorch has no tensor type", e.Message);
    }

    [Fact]
    public void Input_names_come_from_the_scripted_forward()
    {
        Assert.Equal(["input_ids", "attention_mask"], TorchSignature.InputNames(Path.Combine(BuildTree.Models("torch"), "tokens.pt"))!);
        Assert.Equal(["input_0"], TorchSignature.InputNames(Path.Combine(BuildTree.Models("torch"), "mlp.pt"))!);
        Assert.Null(TorchSignature.InputNames(Path.Combine(BuildTree.Models("torch"), "mlp.ref")));
    }
}

/// <summary>Needs libtorch in the process: one ordered walk, since a process loads libtorch once.</summary>
public unsafe class TorchRuntimeTests
{
    [Fact]
    public void Libtorch_missing_then_loaded_then_models_run_and_fail_clearly()
    {
        // 1. A libtorch_dir without libtorch: the error names the cause and the fix.
        var missing = Assert.Throws<SmiException>(() => TorchNative.EnsureLoaded("/nonexistent/libtorch/lib"));
        Assert.Equal(SmiStatus.Runtime, missing.Status);
        Assert.Contains("cannot load libtorch", missing.Message);
        Assert.Contains("libtorch_cpu.so: no such file", missing.Message);
        Assert.Contains("\"libtorch_dir\"", missing.Message);

        // 2. This output folder (whose shim the build fixed up) loads.
        TorchNative.EnsureLoaded(AppContext.BaseDirectory);

        // 3. Output flattening: a tuple comes back as output_0, output_1; a dict is refused clearly.
        var tuple = new TorchModel(new SmiModelDescription("tuple", null, null, Path.Combine(BuildTree.Models("torch"), "tuple.pt"), null), TorchConfig.Defaults);
        tuple.Load(null);
        var x = new float[8];
        fixed (float* p = x)
        {
            var input = new SmiTensor { Name = Utf8.Intern("x"), Dtype = SmiDtype.Fp32, NDim = 2, Data = p, ByteSize = 32 };
            input.Shape[0] = 2;
            input.Shape[1] = 4;
            Assert.Equal(["output_0", "output_1"], Names(tuple, input));
            var dict = new TorchModel(new SmiModelDescription("dict", null, null, Path.Combine(BuildTree.Models("torch"), "dict.pt"), null), TorchConfig.Defaults);
            dict.Load(null);
            var e = Assert.Throws<SmiException>(() => Names(dict, input));
            Assert.Equal(SmiStatus.NotSupported, e.Status);
            Assert.Contains("Dict outputs among them", e.Message);
            dict.Loaded.Release();
        }
        tuple.Loaded.Release();

        // 4. Model errors: a file that is not TorchScript; declared specs enforced.
        var notTorch = new TorchModel(new SmiModelDescription("x", null, null, Path.Combine(BuildTree.Models("torch"), "mlp.ref"), null), TorchConfig.Defaults);
        Assert.Equal(SmiStatus.InvalidParam, Assert.Throws<SmiException>(() => notTorch.Load(null)).Status);
        var typed = new TorchModel(new SmiModelDescription("typed", null, null, Path.Combine(BuildTree.Models("torch"), "mlp.pt"),
            """{"inputs":[{"name":"features","datatype":"FP32","shape":[-1,16]}]}"""), TorchConfig.Defaults);
        typed.Load(null);
        var data = new float[32];
        fixed (float* p = data)
        {
            var input = new SmiTensor { Name = Utf8.Intern("features"), Dtype = SmiDtype.Fp32, NDim = 3, Data = p, ByteSize = 128 };
            input.Shape[0] = 2;
            input.Shape[1] = 16;
            input.Shape[2] = 1;
            var rank = Assert.Throws<SmiException>(() => Infer(typed, input));
            Assert.Contains("has shape [2,16,1]; model 'typed' expects [-1,16]", rank.Message);
            input.NDim = 2;
            input.Dtype = SmiDtype.Int32;
            var dtype = Assert.Throws<SmiException>(() => Infer(typed, input));
            Assert.Contains("is INT32; model 'typed' expects FP32", dtype.Message);
            input.Dtype = SmiDtype.Fp32;
            Assert.Equal(2 * 4 * sizeof(float), Infer(typed, input));
        }
        typed.Loaded.Release();
        Assert.Equal(SmiStatus.InvalidState, Assert.Throws<SmiException>(() => typed.Loaded.Acquire()).Status);
    }

    /// <summary>Runs one input into plugin-allocated outputs and returns their names.</summary>
    private static string[] Names(TorchModel model, SmiTensor input)
    {
        var slots = new SmiTensor[4];
        fixed (SmiTensor* s = slots)
        {
            var outputs = new SmiOutputs(s, 4);
            try
            {
                TorchRunner.Infer(model, new ReadOnlySpan<SmiTensor>(&input, 1), ref outputs);
                var names = new string[outputs.Count];
                for (int i = 0; i < names.Length; i++) names[i] = Utf8.Read(s[i].Name)!;
                return names;
            }
            finally
            {
                for (int i = 0; i < 4; i++)
                    if (s[i].Release != null) s[i].Release(&s[i]);
            }
        }
    }

    /// <summary>Runs one input into plugin-allocated outputs and returns the first output's size.</summary>
    private static int Infer(TorchModel model, SmiTensor input)
    {
        var slots = new SmiTensor[4];
        fixed (SmiTensor* s = slots)
        {
            var outputs = new SmiOutputs(s, 4);
            try
            {
                TorchRunner.Infer(model, new ReadOnlySpan<SmiTensor>(&input, 1), ref outputs);
                return (int)s->ByteSize;
            }
            finally
            {
                for (int i = 0; i < 4; i++)
                    if (s[i].Release != null) s[i].Release(&s[i]);
            }
        }
    }
}
