// ONNX Runtime through libmlos_core.so (the ONNX plugin, NativeAOT) versus ONNX Runtime's own C#
// API, in one process, on one libonnxruntime.so (the plugin's), one intra-op thread each: the MLP
// fixture at batch 1 and 64, and the real OCR classifier at batch 1. Both sides read the input in
// place and copy the output into the same kind of caller buffer; rounds alternate to share noise.
//
//   dotnet run -c Release --project tests/Mlos.Benchmarks.Onnx -- <build-dir>
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Mlos.Benchmarks;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using static Mlos.Benchmarks.Timing;

var build = Path.GetFullPath(args.Length > 0 ? args[0] : "build");
var plugins = Path.Combine(build, "plugins");
// The direct side uses the very library the plugin loads.
NativeLibrary.SetDllImportResolver(typeof(OrtEnv).Assembly, (name, _, _) =>
    name == "onnxruntime" ? NativeLibrary.Load(Path.Combine(plugins, "libonnxruntime.so")) : 0);

var cases = new (string Name, string Path, string Input, long[] Row, int Batch, int Iterations)[]
{
    ("MLP 16-32-4, batch 1", Path.Combine(build, "..", "tests", "models", "onnx", "mlp.onnx"), "input", [16], 1, 20000),
    ("MLP 16-32-4, batch 64", Path.Combine(build, "..", "tests", "models", "onnx", "mlp.onnx"), "input", [16], 64, 5000),
    ("OCR classifier (PaddleOCR cls), batch 1", Path.Combine(build, "models", "ch_ppocr_mobile_v2.0_cls_infer.onnx"), "x", [3, 48, 192], 1, 150),
};

var core = Core.Create();
Core.Check(Core.LoadPlugin(core, Path.Combine(plugins, "libmlos_onnx_plugin.so"), null, """{"intra_op_threads":1,"inter_op_threads":1}"""));
Console.WriteLine($"ONNX Runtime 1.31 on {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}, one intra-op thread per session");
Console.WriteLine($"{"case",-42} {"direct us",10} {"core us",10} {"ratio",8}");
foreach (var c in cases)
{
    string id = $"m{Array.IndexOf(cases, c)}";
    Core.Check(Core.RegisterModel(core, id, "onnx-runtime", Path.GetFullPath(c.Path), null));
    Core.Check(Core.LoadModel(core, id));
    using var options = new SessionOptions { IntraOpNumThreads = 1, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
    using var session = new InferenceSession(Path.GetFullPath(c.Path), options);
    long[] shape = [c.Batch, .. c.Row];
    var input = new float[shape.Aggregate(1L, (a, b) => a * b)];
    for (int i = 0; i < input.Length; i++) input[i] = (i * 7919 % 1000) / 500f - 1;
    string outputName = session.OutputMetadata.Keys.First();
    var outputShape = session.OutputMetadata[outputName].Dimensions.Select(d => d < 0 ? (long)c.Batch : d).ToArray();
    var output = new float[outputShape.Aggregate(1L, (a, b) => a * b)];
    var idUtf8 = System.Text.Encoding.UTF8.GetBytes(id);

    if (Environment.GetEnvironmentVariable("MLOS_BENCH_PROFILE") is { } side)
    {
        if (Array.IndexOf(cases, c) != 0) continue; // the MLP at batch 1, where overhead shows
        // For a profiler: one side alone, for a few seconds (MLOS_BENCH_PROFILE=core or direct).
        if (side == "core") Time(c.Iterations * 20, () => ThroughCore(core, idUtf8, c.Input, input, shape, output));
        else Time(c.Iterations * 20, () => Direct(session, c.Input, input, shape, outputName, output));
        continue;
    }
    var direct = new List<double>();
    var viaCore = new List<double>();
    for (int round = 0; round < 5; round++)
    {
        direct.Add(Time(c.Iterations, () => Direct(session, c.Input, input, shape, outputName, output)));
        viaCore.Add(Time(c.Iterations, () => ThroughCore(core, idUtf8, c.Input, input, shape, output)));
    }
    double d = Median(direct), v = Median(viaCore);
    Console.WriteLine($"{c.Name,-42} {d,10:F2} {v,10:F2} {v / d,7:F3}x");
    Console.WriteLine($"RATIO\tFramework overhead (core / ONNX Runtime C# API)\t{c.Name}\t{v:F2} us\t{d:F2} us\t{v / d:F3}\t<= 1.03");
}
Core.Check(Core.Destroy(core));
return 0;

static unsafe void Direct(InferenceSession session, string inputName, float[] input, long[] shape, string outputName, float[] output)
{
    fixed (float* p = input)
    {
        using var x = OrtValue.CreateTensorValueWithData(OrtMemoryInfo.DefaultInstance, TensorElementType.Float, shape, (nint)p, input.Length * 4);
        using var results = session.Run(s_run, [inputName], [x], [outputName]);
        results[0].GetTensorDataAsSpan<float>().CopyTo(output);
    }
}

static unsafe void ThroughCore(nint core, byte[] id, string inputName, float[] input, long[] shape, float[] output)
{
    fixed (float* p = input)
    fixed (float* o = output)
    {
        var x = new SmiTensor { Name = Utf8.Intern(inputName), Dtype = SmiDtype.Fp32, NDim = (uint)shape.Length, Data = p, ByteSize = (nuint)(input.Length * 4) };
        for (int i = 0; i < shape.Length; i++) x.Shape[i] = shape[i];
        var y = new SmiTensor { Data = o, ByteSize = (nuint)(output.Length * 4) };
        nuint n = 1;
        Core.Check(Core.Infer(core, id, &x, 1, &y, &n));
    }
}

partial class Program
{
    private static readonly RunOptions s_run = new();
}
