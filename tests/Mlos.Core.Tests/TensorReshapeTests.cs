using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// The model option <c>reshape</c> (Triton's): clients see a tensor in one shape, the plugin in
/// another of the same elements. The echo plugin answers output_0 in whatever shape it was given
/// input_0, so what comes back shows the shape the plugin saw.
/// </summary>
[Collection(PluginCollection.Name)]
public unsafe class TensorReshapeTests
{
    /// <summary>An echo model "m" with the reshape given (and a row limit when <paramref name="maxRows"/> is set).</summary>
    private static (MlosCore Core, Models.Model Model) Echo(string reshape, int maxRows = 0)
    {
        var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("m", "csharp-echo", null, $$"""{"dynamic_batching":false,"max_rows":{{maxRows}},"reshape":{{reshape}}}""");
        return (core, model);
    }

    /// <summary>Runs six FP32 values as input_0 of <paramref name="shape"/>; output_0's shape, and its values.</summary>
    private static (long[] Shape, float[] Values) Run(MlosCore core, Models.Model model, long[] shape)
    {
        var values = new float[] { 1, 2, 3, 4, 5, 6 };
        var input = new SmiTensor { Name = Utf8.Intern("input_0"), Dtype = SmiDtype.Fp32, NDim = (uint)shape.Length, ByteSize = 24 };
        shape.CopyTo(input.Shape);
        var outputs = new SmiTensor[1];
        fixed (float* d = values)
        fixed (SmiTensor* o = outputs)
        {
            input.Data = d;
            nuint n = 1;
            core.Infer(model, &input, 1, o, &n);
            try { return (o->Dims.ToArray(), new ReadOnlySpan<float>(o->Data, 6).ToArray()); }
            finally { o->Release(o); }
        }
    }

    [Fact]
    public void The_plugin_sees_the_model_shape_and_the_client_its_own()
    {
        var (core, model) = Echo("""[{"name":"input_0","dims":[2,3],"model_dims":[6]},{"name":"output_0","dims":[3,-1],"model_dims":[-1]}]""");
        using var _ = core;
        core.LoadModel("m");
        var (shape, values) = Run(core, model, [2, 3]);
        // The echo saw [6] (else its output [2,3] would not fit model_dims [-1]) and [6] became [3,2].
        Assert.Equal([3L, 2], shape);
        Assert.Equal([1f, 2, 3, 4, 5, 6], values);
        var specs = model.Specs!;
        Assert.Equal([2L, 3], specs.Inputs.Single(s => s.Name == "input_0").Shape);
        Assert.Equal([3L, -1], specs.Outputs.Single(s => s.Name == "output_0").Shape);

        var e = Assert.Throws<MlosException>(() => Run(core, model, [6]));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Equal("input 'input_0' has shape [6], not [2,3] (-1: any)", e.Message);
    }

    [Fact]
    public void A_batched_reshape_keeps_dim_0_and_works_out_the_free_dimension()
    {
        var (core, model) = Echo("""[{"name":"input_0","dims":[3],"model_dims":[3,1]},{"name":"output_0","dims":[-1],"model_dims":[3,1]}]""", maxRows: 8);
        using var _ = core;
        core.LoadModel("m");
        // The echo saw [2,3,1] (a [2,3] answer would not fit model_dims [3,1] after dim 0), and its [2,3,1] came back as [2,3].
        Assert.Equal([2L, 3], Run(core, model, [2, 3]).Shape);
        Assert.Equal([-1L, 3], model.Specs!.Inputs.Single(s => s.Name == "input_0").Shape);
    }

    /// <summary>Without a row limit a reshape takes whole shapes, so dim 0 is not a batch: merging requests would mix them.</summary>
    [Fact]
    public void A_reshape_of_whole_shapes_is_never_batched()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        const string reshape = """[{"name":"input_0","dims":[-1,4],"model_dims":[4,-1]}]""";
        core.RegisterModel("asked", "csharp-echo", null, $$"""{"dynamic_batching":{"max_batch_size":8},"reshape":{{reshape}}}""");
        var e = Assert.Throws<MlosException>(() => core.LoadModel("asked"));
        Assert.Equal("model 'asked': dynamic batching needs a row limit (max_rows) when tensors are reshaped: a reshape of whole shapes does not keep dim 0", e.Message);
        var left = core.RegisterModel("default", "csharp-echo", null, $$"""{"reshape":{{reshape}}}""");
        core.LoadModel("default");
        Assert.Null(left.ActiveBatching);
        Assert.Equal("it reshapes whole tensors (no row limit), so dim 0 is not a batch dimension", left.WhyNotBatched);
    }

    [Fact]
    public void An_output_its_reshape_cannot_hold_is_the_plugins_breach()
    {
        var (core, model) = Echo("""[{"name":"input_0","dims":[2,3],"model_dims":[6]},{"name":"output_0","dims":[4,-1],"model_dims":[-1]}]""");
        using var _ = core;
        core.LoadModel("m");
        var e = Assert.Throws<MlosException>(() => Run(core, model, [2, 3]));
        Assert.Equal(SmiStatus.Runtime, e.Status);
        Assert.Equal("plugin 'csharp-echo' broke the SMI contract in infer: output 'output_0' has 6 elements per request, which [4,-1] cannot hold", e.Message);
    }

    /// <summary>Against a model whose specs are rules (ONNX Runtime's MLP: input [-1,16], output [-1,4]), a reshape that does not fit fails the load.</summary>
    [Theory]
    [InlineData("""[{"name":"nope","dims":[4,4],"model_dims":[16]}]""", "model 'm': 'reshape' names 'nope', which is none of its inputs or outputs (input, output)")]
    [InlineData("""[{"name":"input","dims":[16],"model_dims":[4,4]}]""", "model 'm': 'input' is reshaped from [-1,4,4], but the model's is [-1,16]")]
    [InlineData("""[{"name":"output","dims":[8],"model_dims":[8]}]""", "model 'm': 'output' is reshaped from [-1,8], but the model's is [-1,4]")]
    public void A_reshape_the_model_does_not_fit_fails_the_load(string reshape, string reason)
    {
        using var core = new MlosCore();
        core.LoadPlugin(System.IO.Path.Combine(BuildTree.PluginDir, "libmlos_onnx_plugin.so"));
        core.RegisterModel("m", "onnx-runtime", System.IO.Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), $$"""{"max_rows":8,"reshape":{{reshape}}}""");
        var e = Assert.Throws<MlosException>(() => core.LoadModel("m"));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Equal(reason, e.Message);
        Assert.Equal(Models.ModelState.Registered, core.GetModel("m").State);
        // A second try fails the same way (the first one's instances were unloaded again).
        Assert.Equal(reason, Assert.Throws<MlosException>(() => core.LoadModel("m")).Message);
    }

    [Theory]
    [InlineData("""{"name":"x","dims":[4],"model_dims":[3]}""", "'x' has 4 elements as [4] but 3 as [3]; a reshape keeps the elements")]
    [InlineData("""{"name":"x","dims":[-1,-1],"model_dims":[4]}""", "'dims' [-1,-1] has more than one free dimension")]
    [InlineData("""{"name":"x","dims":[4]}""", "each entry needs a name, dims and model_dims")]
    [InlineData("""{"name":"x","dims":[4],"model_dims":[-2]}""", "'model_dims' must be an array of at most 8 dimensions, each >= 0 or -1, not [-2]")]
    [InlineData("""{"name":"x","dims":[4],"model_dims":[4],"shape":[4]}""", "unknown key 'shape' (known: name, dims, model_dims)")]
    [InlineData("""{"name":"x","dims":[4294967296,4294967296],"model_dims":[-1]}""", "'x' has a shape whose element count does not fit in 64 bits")]
    [InlineData("""{"name":"x","dims":[5],"model_dims":[2,-1]}""", "'x' has 5 elements as [5], which [2,-1] cannot hold")]
    [InlineData("""{"name":"x","dims":[1,1,1,1,1,1,1,1,1],"model_dims":[-1]}""", "'dims' must be an array of at most 8 dimensions")]
    public void Reshapes_that_cannot_be_right_are_refused_at_registration(string entry, string reason)
    {
        var e = Assert.Throws<MlosException>(() => ModelOptions.Parse($$"""{"reshape":[{{entry}}]}"""));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains(reason, e.Message);
    }
}
