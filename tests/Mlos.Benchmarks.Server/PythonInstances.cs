using System.Text;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// Section "python" (#16): a CPU-bound Python model (a pure-Python loop per row, which holds the
/// GIL) on the Python bridge, KServe v2 binary, 8 connections, dynamic batching off so that each
/// request is one call: the bridge isolated with <c>"instances": 2</c> (two host processes, two
/// interpreters) vs the bridge in process (one interpreter: its calls take turns on the GIL),
/// same class, same server; median of 3 alternating runs each (<see cref="Wrk.Paired"/>).
/// </summary>
internal static class PythonInstances
{
    // Work per row, not per call, so merging rows could not make either side cheaper.
    private const string Source = """
        import numpy as np

        class Spin:
            def get_model_io(self, handle):
                return {"inputs": [{"name": "input", "dtype": "FP32", "shape": [-1, 16]}],
                        "outputs": [{"name": "output", "dtype": "FP32", "shape": [-1, 16]}]}

            def inference(self, handle, data):
                return data

            def infer(self, handle, inputs):
                x = inputs["input"]
                acc = 0
                for i in range(20000 * x.shape[0]):
                    acc += i * i
                return {"output": x + np.float32(acc & 1)}
        """;

    public static async Task Run(string build, Bodies bodies)
    {
        var dir = Directory.CreateTempSubdirectory("mlos-bench-python-").FullName;
        try
        {
            // The bridge imports only from inside a plugin folder: a folder of the one given.
            var module = Directory.CreateDirectory(Path.Combine(dir, "python")).FullName;
            File.WriteAllText(Path.Combine(module, "spin.py"), Source);
            File.WriteAllText(Path.Combine(dir, "spin.model"), "no weights: the class is the model");
            var bridge = Path.Combine(build, "plugins", "libmlos_python_plugin.so");
            using var server = await MlosServer.StartAsync(build,
                ["--plugin-dir", Path.Combine(build, "plugins"), "--plugin-dir", dir, "--model-root", dir, "--no-grpc"]);
            var config = $$"""{"module":"spin","class":"Spin","path":"{{module}}"}""";
            await RegisterPlugin(server, $$"""{"endpoint":"{{bridge}}","id":"python-in-process","isolation":"none","config":{{config}}}""");
            await RegisterPlugin(server, $$"""{"endpoint":"{{bridge}}","id":"python-isolated","isolation":"process","instances":2,"config":{{config}}}""");
            await server.Register("spin-in-process", """{"model_id":"spin-in-process","plugin_id":"python-in-process","path":"spin.model","dynamic_batching":false}""");
            await server.Register("spin-isolated", """{"model_id":"spin-isolated","plugin_id":"python-isolated","path":"spin.model","dynamic_batching":false}""");
            var (inProcessBody, inProcessHeader) = bodies.Binary("spin-in-process", "input", 16);
            var (isolatedBody, isolatedHeader) = bodies.Binary("spin-isolated", "input", 16);
            var (isolated, inProcess) = Wrk.Paired(
                (s, r) => Wrk.Run("mlos_core KServe v2 binary, CPU-bound Python model, bridge isolated, 2 instances", server.Url("/v2/models/spin-isolated/infer"),
                    isolatedBody, "application/octet-stream", isolatedHeader, connections: 8, seconds: s, report: r),
                (s, r) => Wrk.Run("mlos_core KServe v2 binary, CPU-bound Python model, bridge in process", server.Url("/v2/models/spin-in-process/infer"),
                    inProcessBody, "application/octet-stream", inProcessHeader, connections: 8, seconds: s, report: r));
            Report.Ratio("Isolation (Python, 2 isolated instances / in process, throughput)", "KServe v2 binary, pure-Python loop per row, 8 connections",
                isolated, inProcess, isolated.RequestsPerSecond / inProcess.RequestsPerSecond, ">= 1.7");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    private static async Task RegisterPlugin(MlosServer server, string json)
    {
        using var r = await server.Http.PostAsync("/plugins/register", new StringContent(json, Encoding.UTF8, "application/json"));
        if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"registering a Python bridge: {await r.Content.ReadAsStringAsync()}");
    }
}
