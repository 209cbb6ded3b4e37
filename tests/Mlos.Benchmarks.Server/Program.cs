// The server on loopback, everything measured in this run on this machine, in sections:
//   startup  the README's demo (one ONNX model): start-up to /v2/health/ready and idle RSS, median
//            of 5 starts; the same with one Torch model against what libtorch itself costs;
//   threads  threads of a server holding 1000 ONNX models;
//   ceiling  HTTP ceiling: KServe v2 binary echo through mlos_core vs a bare Kestrel endpoint that
//            returns the same bytes (the transport limit here);
//   peer     the 16-32-4 MLP over KServe v2 JSON, mlos_core vs onnxruntime-node behind Node's http;
//   mlp256   the 256-512-512-10 MLP at default settings vs hand-tuned and vs onnxruntime-node, at
//            1, 8 and 64 connections;
//   batching MLP and a wide MLP over KServe v2 binary, dynamic batching by default vs off;
//   grpc     the MLP over gRPC ModelInfer (raw contents) vs KServe v2 binary, both under h2load
//            (HTTP/2 and HTTP/1.1), and REST under wrk beside it;
//   shm      4 MiB in and out through system shared memory vs KServe v2 binary (a server of its
//            own, started with --allow-shared-memory), one C# client both ways;
//   outputs  requested-output selection on a 12-output model: one output vs all, REST binary and
//            gRPC, answer bytes and throughput (a C# client);
//   isolation the MLP over KServe v2 binary on the ONNX plugin in a host process of its own vs in
//            process (#16);
//   python   a CPU-bound Python model on the bridge: 2 isolated instances vs in process (#16, a
//            server of its own);
// plus managed bytes allocated per request on the binary paths (mlos_core's /stats). Load comes
// from wrk (64 connections unless a row says otherwise), h2load for gRPC, and a C# client
// (ClientLoad) where neither can make the requests; each figure that matters is a ratio.
//
//   dotnet run -c Release --project tests/Mlos.Benchmarks.Server -- <build-dir> [node_modules-dir] [--only SECTION[,SECTION…]]
using Mlos.Benchmarks.Server;

string[] sections = ["startup", "threads", "ceiling", "peer", "mlp256", "batching", "grpc", "shm", "outputs", "isolation", "python"];
var positional = new List<string>();
var only = new HashSet<string>();
for (int i = 0; i < args.Length; i++)
{
    if (args[i] == "--only")
    {
        if (i + 1 == args.Length) { Console.Error.WriteLine($"--only needs sections (known: {string.Join(", ", sections)})"); return 2; }
        only.UnionWith(args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }
    else positional.Add(args[i]);
}
if (only.Except(sections).ToList() is { Count: > 0 } unknown)
{
    Console.Error.WriteLine($"unknown section {string.Join(", ", unknown)} (known: {string.Join(", ", sections)})");
    return 2;
}
bool Selected(string section) => only.Count == 0 || only.Contains(section);

var build = Path.GetFullPath(positional.Count > 0 ? positional[0] : "build");
var nodeModules = positional.Count > 1 ? Path.GetFullPath(positional[1]) : null;
var repo = Path.GetDirectoryName(build)!;
var work = Directory.CreateDirectory(Path.Combine(build, "bench", "http")).FullName;
var bodies = new Bodies(work);
Wrk.Script = Path.Combine(repo, "tests", "bench", "post.lua");
Console.WriteLine($"HTTP benchmarks on {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}, wrk -d{Wrk.Seconds}s after 1 s of warm-up, " +
    $"sections: {string.Join(", ", sections.Where(Selected))}");

if (Selected("startup")) await Startup.Demo(build, repo);
if (Selected("threads")) await Startup.ThousandModels(build, repo, bodies);
if (Selected("python")) await PythonInstances.Run(build, bodies);
if (!new[] { "ceiling", "peer", "mlp256", "batching", "grpc", "shm", "outputs", "isolation" }.Any(Selected)) return 0;

// --- mlos_core for the load runs: start-up and idle memory, then the models the runs use.
var root = Directory.CreateDirectory(Path.Combine(work, "models")).FullName;
string Copy(string from)
{
    var to = Path.Combine(root, Path.GetFileName(from));
    if (File.Exists(from)) File.Copy(from, to, overwrite: true);
    return to;
}
var mlp = Copy(Path.Combine(repo, "tests", "models", "onnx", "mlp.onnx"));
Copy(Path.Combine(repo, "tests", "models", "torch", "mlp.pt"));
var wide = Copy(Path.Combine(build, "bench", "models", "wide_mlp.onnx"));
var mlp256 = Copy(Path.Combine(build, "bench", "models", "mlp256.onnx"));
var bigIdentity = Copy(Path.Combine(build, "bench", "models", "big_identity.onnx"));
var manyOutputs = Copy(Path.Combine(build, "bench", "models", "many_outputs.onnx"));
using var server = await MlosServer.StartAsync(build, ["--model-root", root, "--model", "torch-mlp=mlp.pt", "--model", "onnx-mlp=mlp.onnx"]);
await Task.Delay(1000);
Report.Fact("Start-up", "start to /v2/health/ready (ONNX + Torch plugins, one model each)", $"{server.StartedIn.TotalMilliseconds:F0} ms");
Report.Fact("Start-up", "idle RSS with the ONNX, Torch and echo plugins loaded", $"{server.RssMb:F1} MB");
Func<long> mlosAllocated = () => server.AllocatedBytes().GetAwaiter().GetResult();
const string IntraOp1 = """{"intra_op_threads":1,"inter_op_threads":1}""";

// --- HTTP ceiling: mlos_core's binary KServe echo vs bare Kestrel returning the same bytes.
if (Selected("ceiling"))
{
    await server.Register("echo", """{"model_id":"echo","plugin_id":"csharp-echo","path":"mlp.onnx"}""");
    var (echoBody, echoHeader) = bodies.Binary("echo", "x", 16);
    var echoResponse = await Post(server.Http, "/v2/models/echo/infer", echoBody, echoHeader);
    var bare = await BareKestrel.StartAsync(echoResponse);
    // The bare server runs in this process: its allocations are this process's.
    var bareRun = Wrk.Run("bare Kestrel, same bytes back", $"http://127.0.0.1:{bare.Port}/echo", echoBody, "application/octet-stream", echoHeader,
        () => GC.GetTotalAllocatedBytes(precise: true));
    var echoRun = Wrk.Run("mlos_core KServe v2 binary, echo FP32[1,16]", server.Url("/v2/models/echo/infer"), echoBody, "application/octet-stream", echoHeader, mlosAllocated);
    await bare.DisposeAsync();
    Report.Ratio("HTTP ceiling (mlos_core / bare Kestrel, throughput)", "KServe v2 binary echo, 64 B", echoRun, bareRun, echoRun.RequestsPerSecond / bareRun.RequestsPerSecond, ">= 0.8");
}

// --- Peer: onnxruntime-node behind Node's http, same JSON protocol, same model.
if (Selected("peer"))
{
    await server.Register("mlp", $$"""{"model_id":"mlp","path":"mlp.onnx","config":{{IntraOp1}}}""");
    var mlpJson = bodies.Json("mlp", "input", 16);
    var mlosJson = Wrk.Run("mlos_core KServe v2 JSON, MLP", server.Url("/v2/models/mlp/infer"), mlpJson, "application/json");
    using var node = await NodePeer.StartAsync(repo, nodeModules, mlp, "mlp");
    if (node is not null)
    {
        var nodeRun = Wrk.Run($"onnxruntime-node ({node.Workers} workers) + Node http, KServe v2 JSON, MLP", node.Url("/v2/models/mlp/infer"), mlpJson, "application/json");
        Report.Ratio("Peer (mlos_core / onnxruntime-node, throughput)", "KServe v2 JSON, MLP, 64 connections", mlosJson, nodeRun,
            mlosJson.RequestsPerSecond / nodeRun.RequestsPerSecond, ">= 2");
        Report.Ratio("Peer (mlos_core / onnxruntime-node, p99)", "KServe v2 JSON, MLP, 64 connections", mlosJson, nodeRun, mlosJson.P99Ms / nodeRun.P99Ms, "<= 1");
    }
}

// --- Default settings vs hand-tuned and vs the peer, on the 256-wide MLP.
if (Selected("mlp256"))
{
    if (File.Exists(mlp256)) await Defaults.Run(server, repo, nodeModules, mlp256, bodies);
    else Console.WriteLine($"  (no {mlp256}: tests/bench/make_bench_models.py makes it; the mlp256 section is skipped)");
}

// --- Dynamic batching: by default (a registration with no options) vs off, same model, same load.
if (Selected("batching"))
{
    await Batching.Run(server, bodies, mlosAllocated, "mlp", "mlp.onnx", 16, "MLP 16-32-4", ">= 1");
    if (File.Exists(wide)) await Batching.Run(server, bodies, null, "wide", "wide_mlp.onnx", 512, "wide MLP 512-2048-2048-512", ">= 3");
    else Console.WriteLine($"  (no {wide}: tests/bench/make_bench_models.py makes it; the wide MLP rows are skipped)");
}

// --- gRPC ModelInfer vs REST binary, the MLP at one row (on the server above: gRPC is on by default).
if (Selected("grpc")) await GrpcVsRest.Run(server, bodies);

// --- System shared memory vs REST binary, 4 MiB each way.
if (Selected("shm"))
{
    if (File.Exists(bigIdentity)) await SharedMemory.Run(build, root);
    else Console.WriteLine($"  (no {bigIdentity}: tests/bench/make_bench_models.py makes it; the shm section is skipped)");
}

// --- Requested-output selection: one output of twelve vs all of them.
if (Selected("outputs"))
{
    if (File.Exists(manyOutputs)) await OutputSelection.Run(server);
    else Console.WriteLine($"  (no {manyOutputs}: tests/bench/make_bench_models.py makes it; the outputs section is skipped)");
}
// --- Isolation: the ONNX plugin in a plugin host vs in process.
if (Selected("isolation")) await Isolation.Run(server, build, bodies);
return 0;

static async Task<byte[]> Post(HttpClient http, string path, string bodyFile, int headerLength)
{
    using var content = new ByteArrayContent(File.ReadAllBytes(bodyFile));
    content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", headerLength.ToString());
    using var r = await http.PostAsync(path, content);
    var bytes = await r.Content.ReadAsByteArrayAsync();
    if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"{path}: {System.Text.Encoding.UTF8.GetString(bytes)}");
    return bytes;
}
