using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// One mlos_core process on free loopback ports (HTTP, and gRPC unless the arguments say
/// <c>--no-grpc</c>: its default 8081 would be shared by every server this program starts):
/// started, timed to /v2/health/ready, and read from /proc (RSS, threads). Its output is drained
/// (a full pipe would stall it) and the last lines kept for the error message when it dies.
/// </summary>
internal sealed class MlosServer : IDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _tail = new();

    private MlosServer(Process process, int port, int grpcPort)
    {
        _process = process;
        Port = port;
        GrpcPort = grpcPort;
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(120) };
    }

    public int Port { get; }
    /// <summary>The gRPC port (h2c); 0 when started with <c>--no-grpc</c>.</summary>
    public int GrpcPort { get; }
    public HttpClient Http { get; }
    public int Pid => _process.Id;

    /// <summary>From Process.Start to the first 200 from /v2/health/ready.</summary>
    public TimeSpan StartedIn { get; private set; }

    public string Url(string path) => $"http://127.0.0.1:{Port}{path}";

    /// <summary>
    /// Starts <c>build/mlos_core</c> with <paramref name="args"/>, <c>--http-port</c> and
    /// <c>--grpc-port</c>, in <paramref name="build"/>, and waits until it is ready.
    /// </summary>
    public static async Task<MlosServer> StartAsync(string build, IEnumerable<string> args)
    {
        string[] given = [.. args];
        int port = FreePort(), grpcPort = given.Contains("--no-grpc") ? 0 : FreePort();
        string[] grpc = grpcPort == 0 ? [] : ["--grpc-port", grpcPort.ToString()];
        var info = new ProcessStartInfo(Path.Combine(build, "mlos_core"), [.. given, "--http-port", port.ToString(), .. grpc])
        { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = build };
        var clock = Stopwatch.StartNew();
        var server = new MlosServer(Process.Start(info)!, port, grpcPort);
        server._process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        server._process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        try
        {
            await WaitReady(server.Http, "/v2/health/ready", server._process, server.Tail);
        }
        catch
        {
            server.Dispose();
            throw;
        }
        server.StartedIn = clock.Elapsed;
        return server;
    }

    /// <summary>Resident memory now, in MB.</summary>
    public double RssMb => Rss(Pid) / 1024.0;

    /// <summary>
    /// CPU time the process has used so far, user and system (/proc/&lt;pid&gt;/stat): per request,
    /// what the server itself costs, apart from the load generator it shares these cores with.
    /// </summary>
    public double CpuSeconds
    {
        get
        {
            var stat = File.ReadAllText($"/proc/{Pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' '); // after "pid (comm) ": field 3 onwards
            return (long.Parse(fields[11]) + long.Parse(fields[12])) / 100.0; // utime, stime in USER_HZ (100 on Linux)
        }
    }

    /// <summary>Threads of the process now (/proc/&lt;pid&gt;/task).</summary>
    public int Threads => Directory.GetDirectories($"/proc/{Pid}/task").Length;

    public async Task Register(string id, string json)
    {
        var (ok, answer) = await TryRegister(json);
        if (!ok) throw new InvalidOperationException($"registering {id}: {answer}");
    }

    public async Task<(bool Ok, string Answer)> TryRegister(string json)
    {
        using var r = await Http.PostAsync("/models/register", new StringContent(json, Encoding.UTF8, "application/json"));
        return (r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// The server's own statistics of <paramref name="model"/> (Triton's, /v2/models/&lt;model&gt;/stats):
    /// inferences that succeeded and that failed, what a load generator that reads only HTTP status
    /// (h2load, over gRPC) is checked against; and the time spent computing them.
    /// </summary>
    public async Task<InferStats> Stats(string model)
    {
        var stats = JsonDocument.Parse(await Http.GetStringAsync($"/v2/models/{model}/stats")).RootElement
            .GetProperty("model_stats")[0].GetProperty("inference_stats");
        return new(stats.GetProperty("success").GetProperty("count").GetInt64(), stats.GetProperty("fail").GetProperty("count").GetInt64(),
            stats.GetProperty("compute_infer").GetProperty("ns").GetInt64());
    }

    /// <summary>The managed bytes the server has allocated so far (its /stats).</summary>
    public async Task<long> AllocatedBytes() =>
        JsonDocument.Parse(await Http.GetStringAsync("/stats")).RootElement.GetProperty("allocated_bytes").GetInt64();

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { } // already gone
        Http.Dispose();
        _process.Dispose();
    }

    private string Tail()
    {
        lock (_tail) return string.Join('\n', _tail);
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_tail)
        {
            _tail.Enqueue(line);
            if (_tail.Count > 40) _tail.Dequeue();
        }
    }

    /// <summary>Polls <paramref name="path"/> (or, when null, a TCP connect to <paramref name="port"/>) until it answers.</summary>
    public static async Task WaitReady(HttpClient http, string? path, Process process, Func<string> output, int port = 0)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"{process.StartInfo.FileName} exited ({process.ExitCode}):\n{output()}");
            try
            {
                if (path is not null)
                {
                    using var r = await http.GetAsync(path);
                    if (r.IsSuccessStatusCode) return;
                }
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
        throw new TimeoutException($"{process.StartInfo.FileName} did not become ready:\n{output()}");
    }

    /// <summary>VmRSS of a process, in kB.</summary>
    public static long Rss(int pid) => File.ReadLines($"/proc/{pid}/status").Where(l => l.StartsWith("VmRSS:"))
        .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1])).First();

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

/// <summary>Cumulative counts of one model's statistics (<see cref="MlosServer.Stats"/>).</summary>
internal readonly record struct InferStats(long Success, long Fail, long ComputeInferNs);
