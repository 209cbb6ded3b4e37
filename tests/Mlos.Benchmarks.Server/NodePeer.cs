using System.Diagnostics;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// tests/bench/node_peer.mjs serving one ONNX model: onnxruntime-node behind Node's http, one
/// worker per core (node:cluster), one ORT thread each, KServe v2 JSON at /v2/models/&lt;name&gt;/infer.
/// </summary>
internal sealed class NodePeer : IDisposable
{
    private readonly Process _process;

    private NodePeer(Process process, int port, int workers)
    {
        _process = process;
        Port = port;
        Workers = workers;
    }

    public int Port { get; }
    public int Workers { get; }

    public string Url(string path) => $"http://127.0.0.1:{Port}{path}";

    /// <summary>Null (with a note) when onnxruntime-node is not installed.</summary>
    public static async Task<NodePeer?> StartAsync(string repo, string? nodeModules, string model, string name)
    {
        if (nodeModules is null || !Directory.Exists(Path.Combine(nodeModules, "onnxruntime-node")))
        {
            Console.WriteLine("  (no onnxruntime-node: the peer comparison is skipped; tests/bench/run.sh installs it)");
            return null;
        }
        int port = MlosServer.FreePort(), workers = Environment.ProcessorCount;
        var info = new ProcessStartInfo("node", [Path.Combine(repo, "tests", "bench", "node_peer.mjs"), model, name, port.ToString(), workers.ToString()])
        { RedirectStandardOutput = true, RedirectStandardError = true };
        info.Environment["NODE_PATH"] = nodeModules;
        var process = Process.Start(info)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var errors = new List<string>();
        process.OutputDataReceived += (_, e) => { if (e.Data?.StartsWith("node peer ready") == true) ready.TrySetResult(); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (errors) errors.Add(e.Data); };
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"node peer exited: {string.Join('\n', errors)}"));
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var peer = new NodePeer(process, port, workers);
        try
        {
            await ready.Task.WaitAsync(TimeSpan.FromSeconds(60));
        }
        catch
        {
            peer.Dispose();
            throw;
        }
        return peer;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
