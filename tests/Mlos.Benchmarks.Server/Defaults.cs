namespace Mlos.Benchmarks.Server;

/// <summary>
/// Section "mlp256": the 256-512-512-10 MLP (tests/bench/make_bench_models.py) over KServe v2
/// JSON at 1, 8 and 64 connections: mlos_core at default settings (registered with no options)
/// against the best hand-tuned configuration (median of 3 alternating runs each, see
/// <see cref="Wrk.Paired"/>) and against onnxruntime-node (one worker per core).
/// </summary>
internal static class Defaults
{
    /// <summary>The hand-tuned registration: one ORT thread each way, batching up to 64 with no wait.</summary>
    public const string HandTuned = @"""config"":{""intra_op_threads"":1,""inter_op_threads"":1},""dynamic_batching"":{""max_batch_size"":64,""max_queue_delay_us"":0}";

    public static readonly int[] Connections = [1, 8, 64];

    /// <param name="model">The model file, inside the server's model root.</param>
    public static async Task Run(MlosServer server, string repo, string? nodeModules, string model, Bodies bodies)
    {
        var file = Path.GetFileName(model);
        await server.Register("mlp256", $$"""{"model_id":"mlp256","path":"{{file}}"}""");
        await server.Register("mlp256-tuned", $$"""{"model_id":"mlp256-tuned","path":"{{file}}",{{HandTuned}}}""");
        var json = bodies.Json("mlp256", "input", 256);
        using var node = await NodePeer.StartAsync(repo, nodeModules, model, "mlp256");
        foreach (int c in Connections)
        {
            var configuration = $"KServe v2 JSON, MLP 256-512-512-10, {c} connections";
            var (ours, tuned) = Wrk.Paired(
                (s, r) => Wrk.Run("mlos_core default settings, KServe v2 JSON, MLP 256", server.Url("/v2/models/mlp256/infer"), json, "application/json",
                    connections: c, seconds: s, report: r),
                (s, r) => Wrk.Run("mlos_core hand-tuned (1 ORT thread, batching 64), KServe v2 JSON, MLP 256", server.Url("/v2/models/mlp256-tuned/infer"), json,
                    "application/json", connections: c, seconds: s, report: r));
            Report.Ratio("Defaults (default / hand-tuned, throughput)", configuration, ours, tuned, ours.RequestsPerSecond / tuned.RequestsPerSecond, ">= 0.95");
            if (node is null) continue;
            var peer = Wrk.Run($"onnxruntime-node ({node.Workers} workers) + Node http, KServe v2 JSON, MLP 256", node.Url("/v2/models/mlp256/infer"), json,
                "application/json", connections: c);
            Report.Ratio("Peer at defaults (mlos_core default / onnxruntime-node, throughput)", configuration, ours, peer,
                ours.RequestsPerSecond / peer.RequestsPerSecond, c == 64 ? ">= 2" : "");
            Report.Ratio("Peer at defaults (mlos_core default / onnxruntime-node, p99)", configuration, ours, peer, ours.P99Ms / peer.P99Ms, c == 64 ? "<= 1" : "");
        }
    }
}
