using System.Text;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// Section "isolation" (#16): the 16-32-4 MLP over KServe v2 binary, 64 connections, on the ONNX
/// Runtime plugin in a host process of its own ("isolation": "process", registered under another
/// id beside the in-process one) vs the same plugin in process, same model, same settings;
/// median of 5 alternating runs each (<see cref="Wrk.Paired"/>): on 2 shared cores one run of
/// either side varies by a fifth, so 3 runs each left the ratio 0.82-1.03 for the same build.
/// </summary>
internal static class Isolation
{
    public static async Task Run(MlosServer server, string build, Bodies bodies)
    {
        var plugin = Path.Combine(build, "plugins", "libmlos_onnx_plugin.so");
        using (var r = await server.Http.PostAsync("/plugins/register", new StringContent(
                   $$"""{"endpoint":"{{plugin}}","id":"onnx-isolated","isolation":"process"}""", Encoding.UTF8, "application/json")))
            if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"registering the isolated plugin: {await r.Content.ReadAsStringAsync()}");
        await server.Register("mlp-isolated", """{"model_id":"mlp-isolated","plugin_id":"onnx-isolated","path":"mlp.onnx"}""");
        await server.Register("mlp-in-process", """{"model_id":"mlp-in-process","plugin_id":"onnx-runtime","path":"mlp.onnx"}""");
        var (body, header) = bodies.Binary("mlp-isolated", "input", 16);
        var (isolated, inProcess) = Wrk.Paired(
            (s, r) => Wrk.Run("mlos_core KServe v2 binary, MLP 16-32-4, ONNX plugin isolated", server.Url("/v2/models/mlp-isolated/infer"), body,
                "application/octet-stream", header, seconds: s, report: r),
            (s, r) => Wrk.Run("mlos_core KServe v2 binary, MLP 16-32-4, ONNX plugin in process", server.Url("/v2/models/mlp-in-process/infer"), body,
                "application/octet-stream", header, seconds: s, report: r),
            rounds: 5);
        Report.Ratio("Isolation (isolated / in process, throughput)", "KServe v2 binary, MLP 16-32-4, 64 connections", isolated, inProcess,
            isolated.RequestsPerSecond / inProcess.RequestsPerSecond, ">= 0.9");
        Report.Ratio("Isolation (isolated / in process, p99)", "KServe v2 binary, MLP 16-32-4, 64 connections", isolated, inProcess,
            isolated.P99Ms / inProcess.P99Ms, "");
    }
}
