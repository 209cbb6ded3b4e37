// The server on loopback, everything measured in this run on this machine:
//   - start-up to /v2/health/ready and idle RSS with the ONNX and Torch plugins loaded;
//   - HTTP ceiling: KServe v2 binary echo through mlos_core vs a bare Kestrel endpoint that
//     returns the same bytes (the transport limit here);
//   - peer: the MLP over KServe v2 JSON, mlos_core vs onnxruntime-node behind Node's http;
//   - batching: MLP and a wide MLP over KServe v2 binary, dynamic batching off vs on;
//   - managed bytes allocated per request on the binary paths (mlos_core's /stats).
// Load comes from wrk (64 connections); each figure that matters is printed as a ratio.
//
//   dotnet run -c Release --project tests/Mlos.Benchmarks.Server -- <build-dir> [node_modules-dir]
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mlos.Benchmarks.Server;

var build = Path.GetFullPath(args.Length > 0 ? args[0] : "build");
var nodeModules = args.Length > 1 ? Path.GetFullPath(args[1]) : null;
var repo = Path.GetDirectoryName(build)!;
var work = Directory.CreateDirectory(Path.Combine(build, "bench", "http")).FullName;
Wrk.Script = Path.Combine(repo, "tests", "bench", "post.lua");
var mlp = Path.Combine(repo, "tests", "models", "onnx", "mlp.onnx");
var wide = Path.Combine(build, "bench", "models", "wide_mlp.onnx");
Console.WriteLine($"HTTP benchmarks on {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}, wrk -c{Wrk.Connections} -d{Wrk.Seconds}s");

// --- mlos_core: start-up and idle memory, then the models the runs use.
int port = FreePort();
var root = Directory.CreateDirectory(Path.Combine(work, "models")).FullName;
File.Copy(mlp, Path.Combine(root, "mlp.onnx"), overwrite: true);
File.Copy(Path.Combine(repo, "tests", "models", "torch", "mlp.pt"), Path.Combine(root, "mlp.pt"), overwrite: true);
bool haveWide = File.Exists(wide);
if (haveWide) File.Copy(wide, Path.Combine(root, "wide_mlp.onnx"), overwrite: true);
var clock = Stopwatch.StartNew();
using var server = Process.Start(new ProcessStartInfo(Path.Combine(build, "mlos_core"),
    ["--http-port", port.ToString(), "--model-root", root, "--model", "torch-mlp=mlp.pt", "--model", "onnx-mlp=mlp.onnx"])
{ RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = build })!;
var mlos = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}") };
await WaitReady(mlos, "/v2/health/ready", server);
var startup = clock.Elapsed;
await Task.Delay(1000);
double rssMb = Rss(server.Id) / 1024.0;
Console.WriteLine($"FACT\tStart-up\tstart to /v2/health/ready (ONNX + Torch plugins, one model each)\t{startup.TotalMilliseconds:F0} ms");
Console.WriteLine($"FACT\tStart-up\tidle RSS with the ONNX, Torch and echo plugins loaded\t{rssMb:F1} MB");

const string IntraOp1 = """{"intra_op_threads":1,"inter_op_threads":1}""";
await Register("echo", """{"model_id":"echo","plugin_id":"csharp-echo","path":"mlp.onnx"}""");
await Register("mlp", $$"""{"model_id":"mlp","path":"mlp.onnx","config":{{IntraOp1}}}""");
await Register("mlp-batched", $$$"""{"model_id":"mlp-batched","path":"mlp.onnx","config":{{{IntraOp1}}},"dynamic_batching":{"max_batch_size":64,"max_queue_delay_us":0}}""");
if (haveWide)
{
    await Register("wide", $$"""{"model_id":"wide","path":"wide_mlp.onnx","config":{{IntraOp1}}}""");
    await Register("wide-batched", $$$"""{"model_id":"wide-batched","path":"wide_mlp.onnx","config":{{{IntraOp1}}},"dynamic_batching":{"max_batch_size":64,"max_queue_delay_us":0}}""");
}

// --- Request bodies (files for wrk).
var rng = new Random(3);
float[] Floats(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
var (echoBody, echoHeader) = BinaryRequest(work, "echo", "x", Floats(16));
var (mlpBin, mlpHeader) = BinaryRequest(work, "mlp", "input", Floats(16));
var (wideBin, wideHeader) = BinaryRequest(work, "wide", "input", Floats(512));
var mlpJson = Path.Combine(work, "mlp.json");
File.WriteAllText(mlpJson, $$"""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[{{string.Join(",", Floats(16))}}]}]}""");
string Url(int p, string path) => $"http://127.0.0.1:{p}{path}";

// --- 1. HTTP ceiling: mlos_core's binary KServe echo vs bare Kestrel returning the same bytes.
var echoResponse = await Post(mlos, "/v2/models/echo/infer", echoBody, echoHeader);
var bare = await BareKestrel.StartAsync(echoResponse);
// The bare server runs in this process: its allocations are this process's.
var bareRun = Wrk.Run("bare Kestrel, same bytes back", Url(bare.Port, "/echo"), echoBody, "application/octet-stream", echoHeader,
    () => GC.GetTotalAllocatedBytes(precise: true));
Func<long> mlosAllocated = () => AllocatedBytes(mlos).GetAwaiter().GetResult();
var echoRun = Wrk.Run("mlos_core KServe v2 binary, echo FP32[1,16]", Url(port, "/v2/models/echo/infer"), echoBody, "application/octet-stream", echoHeader, mlosAllocated);
await bare.DisposeAsync();
Ratio("HTTP ceiling (mlos_core / bare Kestrel, throughput)", "KServe v2 binary echo, 64 B", echoRun, bareRun, echoRun.RequestsPerSecond / bareRun.RequestsPerSecond, ">= 0.8");

// --- 2. Peer: onnxruntime-node behind Node's http, same JSON protocol, same model.
var mlosJson = Wrk.Run("mlos_core KServe v2 JSON, MLP", Url(port, "/v2/models/mlp/infer"), mlpJson, "application/json");
if (nodeModules is not null && Directory.Exists(Path.Combine(nodeModules, "onnxruntime-node")))
{
    int nodePort = FreePort();
    var nodeInfo = new ProcessStartInfo("node", [Path.Combine(repo, "tests", "bench", "node_peer.mjs"), mlp, "mlp", nodePort.ToString()])
    { RedirectStandardOutput = true, RedirectStandardError = true };
    nodeInfo.Environment["NODE_PATH"] = nodeModules;
    using var node = Process.Start(nodeInfo)!;
    var nodeClient = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{nodePort}") };
    await WaitReady(nodeClient, null, node, nodePort);
    var nodeRun = Wrk.Run("onnxruntime-node + Node http, KServe v2 JSON, MLP", Url(nodePort, "/v2/models/mlp/infer"), mlpJson, "application/json");
    node.Kill();
    Ratio("Peer (mlos_core / onnxruntime-node, throughput)", "KServe v2 JSON, MLP, 64 connections", mlosJson, nodeRun,
        mlosJson.RequestsPerSecond / nodeRun.RequestsPerSecond, ">= 2");
    Ratio("Peer (mlos_core / onnxruntime-node, p99)", "KServe v2 JSON, MLP, 64 connections", mlosJson, nodeRun, mlosJson.P99Ms / nodeRun.P99Ms, "<= 1");
}
else Console.WriteLine("  (no onnxruntime-node: the peer comparison is skipped; tests/bench/run.sh installs it)");

// --- 3. Dynamic batching: off vs on, same model, same load.
var mlpOff = Wrk.Run("mlos_core KServe v2 binary, MLP, batching off", Url(port, "/v2/models/mlp/infer"), mlpBin, "application/octet-stream", mlpHeader, mlosAllocated);
var mlpOn = Wrk.Run("mlos_core KServe v2 binary, MLP, batching on", Url(port, "/v2/models/mlp-batched/infer"), mlpBin, "application/octet-stream", mlpHeader);
Ratio("Batching (on / off, throughput)", "MLP 16-32-4, 64 connections", mlpOn, mlpOff, mlpOn.RequestsPerSecond / mlpOff.RequestsPerSecond, ">= 3");
Ratio("Batching (p99 on / p50 off)", "MLP 16-32-4, 64 connections", mlpOn, mlpOff, mlpOn.P99Ms / mlpOff.P50Ms, "<= 2");
if (haveWide)
{
    var wideOff = Wrk.Run("mlos_core KServe v2 binary, wide MLP, batching off", Url(port, "/v2/models/wide/infer"), wideBin, "application/octet-stream", wideHeader);
    var wideOn = Wrk.Run("mlos_core KServe v2 binary, wide MLP, batching on", Url(port, "/v2/models/wide-batched/infer"), wideBin, "application/octet-stream", wideHeader);
    Ratio("Batching (on / off, throughput)", "wide MLP 512-2048-2048-512, 64 connections", wideOn, wideOff, wideOn.RequestsPerSecond / wideOff.RequestsPerSecond, ">= 3");
    Ratio("Batching (p99 on / p50 off)", "wide MLP 512-2048-2048-512, 64 connections", wideOn, wideOff, wideOn.P99Ms / wideOff.P50Ms, "<= 2");
}
server.Kill();
return 0;

async Task Register(string id, string json)
{
    using var r = await mlos.PostAsync("/models/register", new StringContent(json, Encoding.UTF8, "application/json"));
    if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"registering {id}: {await r.Content.ReadAsStringAsync()}");
}

static void Ratio(string benchmark, string configuration, LoadResult value, LoadResult baseline, double ratio, string goal) =>
    Console.WriteLine($"RATIO\t{benchmark}\t{configuration}\t{value.Name}: {value.RequestsPerSecond:F0} req/s, p50 {value.P50Ms:F2} ms, p99 {value.P99Ms:F2} ms" +
        $"\t{baseline.Name}: {baseline.RequestsPerSecond:F0} req/s, p50 {baseline.P50Ms:F2} ms, p99 {baseline.P99Ms:F2} ms\t{ratio:F3}\t{goal}");

static async Task<long> AllocatedBytes(HttpClient http) =>
    JsonDocument.Parse(await http.GetStringAsync("/stats")).RootElement.GetProperty("allocated_bytes").GetInt64();

static (string File, int HeaderLength) BinaryRequest(string dir, string name, string input, float[] values)
{
    var header = Encoding.UTF8.GetBytes($$$"""{"inputs":[{"name":"{{{input}}}","shape":[1,{{{values.Length}}}],"datatype":"FP32","parameters":{"binary_data_size":{{{values.Length * 4}}}}}],"parameters":{"binary_data_output":true}}""");
    var file = Path.Combine(dir, $"{name}.bin");
    File.WriteAllBytes(file, [.. header, .. values.SelectMany(BitConverter.GetBytes)]);
    return (file, header.Length);
}

static async Task<byte[]> Post(HttpClient http, string path, string bodyFile, int headerLength)
{
    using var content = new ByteArrayContent(File.ReadAllBytes(bodyFile));
    content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", headerLength.ToString());
    using var r = await http.PostAsync(path, content);
    var bytes = await r.Content.ReadAsByteArrayAsync();
    if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"{path}: {Encoding.UTF8.GetString(bytes)}");
    return bytes;
}

static async Task WaitReady(HttpClient http, string? path, Process process, int port = 0)
{
    var deadline = DateTime.UtcNow.AddSeconds(60);
    while (DateTime.UtcNow < deadline)
    {
        if (process.HasExited) throw new InvalidOperationException($"{process.StartInfo.FileName} exited: {process.StandardError.ReadToEnd()}");
        try
        {
            if (path is not null) { if ((await http.GetAsync(path)).IsSuccessStatusCode) return; }
            else
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
        }
        catch (Exception e) when (e is HttpRequestException or SocketException) { }
        await Task.Delay(2);
    }
    throw new TimeoutException($"{process.StartInfo.FileName} did not become ready");
}

static long Rss(int pid) => File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:"))
    .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1])).First();

static int FreePort()
{
    using var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    return ((IPEndPoint)l.LocalEndpoint).Port;
}
