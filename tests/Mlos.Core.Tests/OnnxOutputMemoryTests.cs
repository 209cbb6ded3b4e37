using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// Sessions without ONNX Runtime's arena (the default) take their memory from the plugin's
/// allocator (TensorMemory): a large output ONNX Runtime hands over sits in a huge-page mapping
/// of its own, and gives the same values as a session on ONNX Runtime's arena.
/// </summary>
[Collection(PluginCollection.Name)]
public unsafe class OnnxOutputMemoryTests
{
    private const int Rows = 150_000; // MLP 16 -> 4: a 2.4 MB output

    private static float[] Run(MlosCore core, Models.Model model, float[] data, out bool hugeMapping)
    {
        var input = new SmiTensor { Name = Utf8.Intern("input"), Dtype = SmiDtype.Fp32, NDim = 2, ByteSize = (nuint)(data.Length * 4) };
        input.Shape[0] = Rows;
        input.Shape[1] = 16;
        var outputs = new SmiTensor[2];
        fixed (float* d = data)
        fixed (SmiTensor* o = outputs)
        {
            input.Data = d;
            nuint n = 2;
            core.Infer(model, &input, 1, o, &n);
            try
            {
                Assert.Equal((nuint)1, n);
                Assert.Equal((nuint)(Rows * 4 * 4), o->ByteSize);
                var mapping = ProcessMappings.Find(o->Data);
                hugeMapping = (ulong)((byte*)o->Data - 64) % (2 << 20) == 0 && mapping is { } m && m.Flags.Contains("hg");
                return new ReadOnlySpan<float>(o->Data, Rows * 4).ToArray();
            }
            finally { if (o->Release != null) o->Release(o); }
        }
    }

    [Fact]
    public void A_large_output_is_a_huge_page_block_of_ours_with_the_arena_sessions_values()
    {
        using var core = new MlosCore();
        core.LoadPlugin(Path.Combine(BuildTree.PluginDir, "libmlos_onnx_plugin.so"), config: """{"intra_op_threads":1}""");
        var mlp = Path.Combine(BuildTree.Models("onnx"), "mlp.onnx");
        var plain = core.RegisterModel("plain", "onnx-runtime", mlp, """{"dynamic_batching":false}""");
        var arena = core.RegisterModel("arena", "onnx-runtime", mlp, """{"dynamic_batching":false,"config":{"cpu_mem_arena":true}}""");
        core.LoadModel("plain");
        core.LoadModel("arena");
        var random = new Random(11);
        var data = Enumerable.Range(0, Rows * 16).Select(_ => (float)random.NextDouble() * 4 - 2).ToArray();

        var ours = Run(core, plain, data, out bool huge);
        Assert.True(huge, "the output is not a TensorMemory huge-page block");
        var theirs = Run(core, arena, data, out bool arenaHuge);
        Assert.False(arenaHuge); // the arena's own memory: the setting really chose the allocator
        Assert.Equal(theirs, ours);
    }
}
