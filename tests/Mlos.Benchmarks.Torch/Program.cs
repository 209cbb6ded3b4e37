// TorchSharp through libmlos_core.so versus TorchSharp called directly, in one process, on the
// same libtorch: the MLP fixture at batch 1 and 64. Both sides build the input tensor over
// the same memory (no copy) and copy the output out; rounds alternate to share the noise.
//
//   dotnet run -c Release --project tests/Mlos.Benchmarks.Torch -- <build-dir>
using System.Diagnostics;
using System.Runtime.InteropServices;
using Mlos.Plugins.TorchSharp;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using TorchSharp;
using Mlos.Benchmarks;
using static Mlos.Benchmarks.Timing;

var build = Path.GetFullPath(args.Length > 0 ? args[0] : "build");
var model = Path.Combine(build, "..", "tests", "models", "torch", "mlp.pt");
var here = AppContext.BaseDirectory;

// Direct: this process's TorchSharp over the libtorch in this folder.
TorchNative.EnsureLoaded(here);
using var module = torch.jit.load(model);
module.eval();

// Through the core: the NativeAOT plugin, pointed at the same libtorch (two copies of libtorch
// in one process abort).
var core = Core.Create();
Core.Check(Core.LoadPlugin(core, Path.Combine(build, "plugins", "libmlos_torch_plugin.so"), null, $$"""{"libtorch_dir":"{{here}}"}"""));
Core.Check(Core.RegisterModel(core, "mlp", "torchsharp", model, null));
Core.Check(Core.LoadModel(core, "mlp"));

Console.WriteLine($"TorchSharp MLP 16-32-4 on {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}");
Console.WriteLine($"{"batch",6} {"direct us",12} {"core us",12} {"ratio",8}");
foreach (var batch in new[] { 1, 64 })
{
    var input = new float[batch * 16];
    new Random(1).NextSingle();
    for (int i = 0; i < input.Length; i++) input[i] = (i % 17) / 17f;
    var output = new float[batch * 4];
    int iterations = batch == 1 ? 4000 : 1500;
    var direct = new List<double>();
    var viaCore = new List<double>();
    for (int round = 0; round < 7; round++)
    {
        direct.Add(Time(iterations, () => Direct(module, input, output, batch)));
        viaCore.Add(Time(iterations, () => ThroughCore(core, input, output, batch)));
    }
    double d = Median(direct), c = Median(viaCore);
    Console.WriteLine($"{batch,6} {d,12:F2} {c,12:F2} {c / d,7:F3}x");
    Console.WriteLine($"RATIO\tFramework overhead (core / TorchSharp direct)\tTorch MLP, batch {batch}\t{c:F2} us\t{d:F2} us\t{c / d:F3}\t<= 1.03");
}
Core.Check(Core.Destroy(core));
return 0;

static unsafe void Direct(torch.jit.ScriptModule module, float[] input, float[] output, int batch)
{
    using var scope = torch.NewDisposeScope();
    using var mode = torch.inference_mode();
    fixed (float* p = input)
    {
        var x = TorchShim.FromBlob(p, [batch, 16], torch.ScalarType.Float32);
        var y = (torch.Tensor)module.forward(x);
        y.contiguous().bytes.CopyTo(MemoryMarshal.AsBytes(output.AsSpan()));
    }
}

static unsafe void ThroughCore(nint core, float[] input, float[] output, int batch)
{
    fixed (float* p = input)
    fixed (float* o = output)
    {
        var x = new SmiTensor { Name = Utf8.Intern("input_0"), Dtype = SmiDtype.Fp32, NDim = 2, Data = p, ByteSize = (nuint)(input.Length * 4) };
        x.Shape[0] = batch;
        x.Shape[1] = 16;
        var y = new SmiTensor { Data = o, ByteSize = (nuint)(output.Length * 4) };
        nuint n = 1;
        Core.Check(Core.Infer(core, "mlp"u8, &x, 1, &y, &n));
    }
}

