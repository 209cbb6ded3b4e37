// The server under load, on loopback: start-up time to /v2/health/ready and idle RSS with every
// plugin loaded, then 20,000 MLOS inference requests on the MLP from 64 concurrent connections
// (bounded in count and time; it stops by itself).
//
//   dotnet run -c Release --project tests/Mlos.Benchmarks.Server -- <build-dir> [requests] [connections]
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

var build = Path.GetFullPath(args.Length > 0 ? args[0] : "build");
int total = args.Length > 1 ? int.Parse(args[1]) : 20_000;
int connections = args.Length > 2 ? int.Parse(args[2]) : 64;
var models = Path.GetFullPath(Path.Combine(build, "..", "tests", "models"));

int port;
using (var l = new TcpListener(IPAddress.Loopback, 0)) { l.Start(); port = ((IPEndPoint)l.LocalEndpoint).Port; }
var info = new ProcessStartInfo(Path.Combine(build, "mlos_core"), ["--http-port", port.ToString(), "--model-root", models, "--model", "mlp=onnx/mlp.onnx"])
{
    RedirectStandardOutput = true,
    RedirectStandardError = true,
    WorkingDirectory = build,
};
using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = connections, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
using var http = new HttpClient(handler) { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };

var clock = Stopwatch.StartNew();
using var server = Process.Start(info)!;
while (true)
{
    if (server.HasExited) throw new InvalidOperationException("mlos_core exited: " + server.StandardError.ReadToEnd());
    try { if ((await http.GetAsync("/v2/health/ready")).IsSuccessStatusCode) break; }
    catch (HttpRequestException) { await Task.Delay(1); }
}
var startup = clock.Elapsed;
await Task.Delay(1000);
long rssKb = File.ReadLines($"/proc/{server.Id}/status").Where(l => l.StartsWith("VmRSS:")).Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1])).First();

var body = Encoding.UTF8.GetBytes("{\"input\":[[" + string.Join(",", Enumerable.Range(0, 16).Select(i => (i / 16.0).ToString("0.###"))) + "]]}");
var latencies = new double[total];
int next = -1, errors = 0;
var deadline = DateTime.UtcNow.AddMinutes(3);
async Task Worker()
{
    while (DateTime.UtcNow < deadline)
    {
        int i = Interlocked.Increment(ref next);
        if (i >= total) return;
        var t = Stopwatch.GetTimestamp();
        try
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new("application/json");
            using var response = await http.PostAsync("/models/mlp/inference", content);
            await response.Content.ReadAsByteArrayAsync();
            if (response.StatusCode != HttpStatusCode.OK) Interlocked.Increment(ref errors);
        }
        catch (HttpRequestException) { Interlocked.Increment(ref errors); }
        latencies[i] = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
    }
}
clock.Restart();
await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => Task.Run(Worker)));
var elapsed = clock.Elapsed;
int done = Math.Min(total, next + 1);
var sorted = latencies.Take(done).Order().ToArray();
server.Kill();

Console.WriteLine($"mlos_core on {Environment.ProcessorCount} cores, {DateTime.UtcNow:yyyy-MM-dd}");
Console.WriteLine($"start to /v2/health/ready: {startup.TotalMilliseconds:F0} ms; idle RSS with all plugins loaded: {rssKb / 1024.0:F1} MB");
Console.WriteLine($"MLOS inference, MLP batch 1: {done} requests, {connections} connections, {errors} errors, " +
    $"{done / elapsed.TotalSeconds:F0} req/s, p50 {sorted[done / 2]:F2} ms, p99 {sorted[(int)(done * 0.99)]:F2} ms");
return errors == 0 ? 0 : 1;
