using System.Runtime.InteropServices;
using Mlos.Core.Models;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// The one check of a typed request in the core, against the specs the model gave at load, and
/// requested outputs: computed alone by a plugin that takes the selection (SMI 1.3, the ONNX
/// plugin), dropped by the core for one that does not (the C hostile fixture), before any caller
/// sees them.
/// </summary>
[Collection(PluginCollection.Name)]
public unsafe class RequestChecksTests
{
    private static string Onnx(string name) => Path.Combine(BuildTree.Models("onnx"), name);

    /// <summary>multi_io.onnx: input_ids INT64 [-1,8], features FP32 [-1,4] → logits, ids_sum, mask.</summary>
    private static (MlosCore Core, Model Model) Multi()
    {
        var core = new MlosCore();
        core.LoadPlugin(Path.Combine(BuildTree.PluginDir, "libmlos_onnx_plugin.so"));
        var model = core.RegisterModel("multi", "onnx-runtime", Onnx("multi_io.onnx"), """{"dynamic_batching":false}""");
        core.LoadModel("multi");
        return (core, model);
    }

    private sealed class Tensors : IDisposable
    {
        private readonly List<nint> _blocks = [];
        public readonly SmiTensor* Inputs = (SmiTensor*)NativeMemory.AllocZeroed(8, (nuint)sizeof(SmiTensor));
        public readonly SmiTensor* Outputs = (SmiTensor*)NativeMemory.AllocZeroed(8, (nuint)sizeof(SmiTensor));
        public int Count;

        public void Add(string name, SmiDtype dtype, long[] shape, int elementSize)
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var data = NativeMemory.AllocZeroed((nuint)(n * elementSize) + 1);
            _blocks.Add((nint)data);
            var t = &Inputs[Count++];
            t->Name = Utf8.Intern(name);
            t->Dtype = dtype;
            t->NDim = (uint)shape.Length;
            shape.CopyTo(t->Shape);
            t->Data = data;
            t->ByteSize = (nuint)(n * elementSize);
        }

        public string[] OutputNames(nuint n) => Enumerable.Range(0, (int)n).Select(i => Utf8.Read(Outputs[i].Name)!).ToArray();

        public void Dispose()
        {
            for (int i = 0; i < 8; i++)
                if (Outputs[i].Release != null) Outputs[i].Release(&Outputs[i]);
            foreach (var b in _blocks) NativeMemory.Free((void*)b);
            NativeMemory.Free(Inputs);
            NativeMemory.Free(Outputs);
        }
    }

    private static Tensors Good()
    {
        var t = new Tensors();
        t.Add("input_ids", SmiDtype.Int64, [2, 8], 8);
        t.Add("features", SmiDtype.Fp32, [2, 4], 4);
        return t;
    }

    private static string Refused(Action<Tensors> change)
    {
        var (core, model) = Multi();
        using (core)
        using (var t = Good())
        {
            change(t);
            nuint* n = stackalloc nuint[1];
            *n = 8;
            var before = model.Statistics.Read().Fail.Count;
            var e = Assert.Throws<MlosException>(() => core.Infer(model, t.Inputs, (nuint)t.Count, t.Outputs, n));
            Assert.Equal(SmiStatus.InvalidParam, e.Status);
            Assert.Equal(before + 1, model.Statistics.Read().Fail.Count); // a failed request of the model
            return e.Message;
        }
    }

    [Fact]
    public void Requests_that_do_not_fit_the_models_specs_are_refused_in_the_core_with_its_words()
    {
        Assert.Equal("model 'multi' has no input 'ids' (its inputs: input_ids, features)",
            Refused(t => t.Inputs[0].Name = Utf8.Intern("ids")));
        Assert.Equal("input 'features' is FP64; model 'multi' expects FP32",
            Refused(t => { t.Inputs[1].Dtype = SmiDtype.Fp64; t.Inputs[1].Shape[1] = 2; }));
        Assert.Equal("input 'features' has shape [2,5]; model 'multi' expects [-1,4] (-1: any)",
            Refused(t => { t.Inputs[1].Shape[1] = 5; t.Inputs[1].ByteSize = 40; }));
        Assert.Equal("model 'multi' needs input 'features' (its inputs: input_ids, features)",
            Refused(t => t.Count = 1));
        Assert.Equal("input 'input_ids' is given twice",
            Refused(t => t.Inputs[1] = t.Inputs[0]));
    }

    private static byte** Names(params string[] names)
    {
        var p = (byte**)NativeMemory.Alloc((nuint)(names.Length * sizeof(byte*)));
        for (int i = 0; i < names.Length; i++) p[i] = Utf8.Intern(names[i]);
        return p;
    }

    [Fact]
    public void A_plugin_with_infer_selected_computes_only_the_requested_outputs()
    {
        var (core, model) = Multi();
        using (core)
        using (var t = Good())
        {
            Assert.True(model.Plugin.HasSelectedInfer);
            var names = Names("mask");
            try
            {
                // One slot: a plugin writing all three outputs would need three.
                nuint* n = stackalloc nuint[1];
                *n = 1;
                core.Infer(model, t.Inputs, 2, t.Outputs, n, new OutputSelection(names, 1));
                Assert.Equal(["mask"], t.OutputNames(*n));
                Assert.Equal(SmiDtype.Bool, t.Outputs[0].Dtype);
                t.Outputs[0].Release(&t.Outputs[0]);

                *n = 8;
                var e = Assert.Throws<MlosException>(() => core.Infer(model, t.Inputs, 2, t.Outputs, n, new OutputSelection(Names("nope"), 1)));
                Assert.Equal("model 'multi' has no output 'nope' (its outputs: logits, ids_sum, mask)", e.Message);
                var twice = Names("mask", "mask");
                Assert.Contains("requested twice", Assert.Throws<MlosException>(() => core.Infer(model, t.Inputs, 2, t.Outputs, n, new OutputSelection(twice, 2))).Message);
            }
            finally { NativeMemory.Free(names); }
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct HostileStats
    {
        public long DeadCalls, Overlaps, Registered, Live, InferenceCalls, InferCalls, Allocs, Releases;
        public fixed byte Rest[2 * 512 + 6 * 8];
    }

    private static HostileStats Stats(string path)
    {
        var stats = (delegate* unmanaged<HostileStats*, void>)NativeLibrary.GetExport(NativeLibrary.Load(path), "hostile_stats");
        HostileStats s;
        stats(&s);
        return s;
    }

    [Fact]
    public void For_a_plugin_without_it_the_core_releases_the_unrequested_outputs_before_returning()
    {
        var path = BuildTree.Require(Path.Combine(BuildTree.Dir, "c-tests", "plugins", "libmlos_hostile_plugin.so"));
        // In process: the test counts the fixture's allocations and releases here.
        using var core = new MlosCore { DefaultIsolation = Mlos.Core.Isolation.PluginIsolation.None };
        var plugin = core.LoadPlugin(path);
        Assert.False(plugin.HasSelectedInfer);
        var model = core.RegisterModel("h", "hostile", null, """{"dynamic_batching":false}""");
        core.LoadModel("h");
        using var t = new Tensors();
        t.Add("x", SmiDtype.Fp32, [1, 4], 4);
        var names = Names("y1");
        try
        {
            var before = Stats(path);
            nuint n = 8;
            core.Infer(model, t.Inputs, 1, t.Outputs, &n, new OutputSelection(names, 1));
            var after = Stats(path);
            Assert.Equal(["y1"], t.OutputNames(n));
            Assert.Equal(2, after.Allocs - before.Allocs);       // the plugin made both outputs
            Assert.Equal(1, after.Releases - before.Releases);   // and y0 went back before the call returned
        }
        finally { NativeMemory.Free(names); }
    }
}
