namespace Mlos.Benchmarks.Server;

/// <summary>
/// Section "batching": one model registered twice, by default (no options at all) and with
/// <c>"dynamic_batching": false</c>, under the same load (KServe v2 binary, 64 connections),
/// median of 3 alternating runs each (<see cref="Wrk.Paired"/>).
/// </summary>
internal static class Batching
{
    /// <param name="allocated">When given, the off run also reports managed bytes per request.</param>
    public static async Task Run(MlosServer server, Bodies bodies, Func<long>? allocated, string id, string file, int width, string model, string throughputGoal)
    {
        await server.Register($"{id}-default", $$"""{"model_id":"{{id}}-default","path":"{{file}}"}""");
        var configuration = $"{model}, 64 connections";
        await server.Register($"{id}-off", $$"""{"model_id":"{{id}}-off","path":"{{file}}","dynamic_batching":false}""");
        var (body, header) = bodies.Binary(id, "input", width);
        int round = 0; // managed bytes per request are probed in the first round only
        var (on, off) = Wrk.Paired(
            (s, r) => Wrk.Run($"mlos_core KServe v2 binary, {model}, default settings", server.Url($"/v2/models/{id}-default/infer"), body, "application/octet-stream", header,
                seconds: s, report: r),
            (s, r) => Wrk.Run($"mlos_core KServe v2 binary, {model}, batching off", server.Url($"/v2/models/{id}-off/infer"), body, "application/octet-stream", header,
                round++ == 0 ? allocated : null, seconds: s, report: r));
        Report.Ratio("Batching (default / off, throughput)", configuration, on, off, on.RequestsPerSecond / off.RequestsPerSecond, throughputGoal);
        Report.Ratio("Batching (p99 default / p50 off)", configuration, on, off, on.P99Ms / off.P50Ms, "<= 2");
    }
}
