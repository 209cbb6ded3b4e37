namespace Mlos.Benchmarks.Server;

/// <summary>
/// Section "shm": 4 MiB in and 4 MiB out (big_identity.onnx, output = input * 1.0) through system
/// shared memory against REST binary, the same client both ways (<see cref="ClientLoad"/>, one
/// HttpClient, <see cref="Tasks"/> loops), median of 3 alternating runs each. A server of its own:
/// the only one started with --allow-shared-memory. Each loop owns an input and an output region,
/// registered once. What a shared-memory request costs the client is counted in full: it copies
/// its input (an array of its own) into the input region, sends a small JSON request naming both
/// regions, and copies the output out of the output region into an array of its own; a client
/// that makes and uses its tensors in place would skip both copies. REST sends one prepared body
/// and reads the whole answer into a buffer of its own.
/// The model is registered twice: with no options (the goal's row: what a user gets; 4 MiB
/// requests are over the default max_merge_bytes, so they run at once, never merged) and with
/// batching off and ONNX Runtime's CPU arena on, for comparison with ORT's own allocator.
/// </summary>
internal static class SharedMemory
{
    private const int Tasks = 8;
    private const int Floats = 1 << 20, Bytes = Floats * 4;

    public static async Task Run(string build, string root)
    {
        using var server = await MlosServer.StartAsync(build, ["--model-root", root, "--allow-shared-memory"]);
        await server.Register("big-identity", """{"model_id":"big-identity","path":"big_identity.onnx"}""");
        await server.Register("big-identity-tuned",
            """{"model_id":"big-identity-tuned","path":"big_identity.onnx","dynamic_batching":false,"config":{"cpu_mem_arena":true}}""");
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Tasks, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) })
        { BaseAddress = new Uri(server.Url("")), Timeout = TimeSpan.FromSeconds(60) };
        var data = Bodies.FloatBytes(Floats);
        var (body, header) = RestBinary.Body($$$"""{"inputs":[{"name":"input","shape":[1,{{{Floats}}}],"datatype":"FP32","parameters":{"binary_data_size":{{{Bytes}}}}}],"parameters":{"binary_data_output":true}}""", data);

        var regions = new List<ShmRegion>();
        try
        {
            for (int i = 0; i < Tasks; i++)
            {
                regions.Add(await ShmRegion.CreateAsync(http, $"mlos-bench-{Environment.ProcessId}-in{i}", Bytes));
                regions.Add(await ShmRegion.CreateAsync(http, $"mlos-bench-{Environment.ProcessId}-out{i}", Bytes));
            }
            var inputs = Enumerable.Range(0, Tasks).Select(_ => data.ToArray()).ToArray();
            var outputs = Enumerable.Range(0, Tasks).Select(_ => new byte[Bytes]).ToArray();
            var requests = Enumerable.Range(0, Tasks).Select(i => System.Text.Encoding.UTF8.GetBytes($$$"""
                {"inputs":[{"name":"input","shape":[1,{{{Floats}}}],"datatype":"FP32","parameters":{"shared_memory_region":"{{{regions[2 * i].Name}}}","shared_memory_byte_size":{{{Bytes}}}}}],
                 "outputs":[{"name":"output","parameters":{"shared_memory_region":"{{{regions[2 * i + 1].Name}}}","shared_memory_byte_size":{{{Bytes}}}}}]}
                """)).ToArray();

            async Task Compare(string model, string settings, string goal)
            {
                var path = $"/v2/models/{model}/infer";
                var (answer, restOutputs) = await RestBinary.Post(http, path, body, header);
                // Room for the answer's JSON header to grow: it reports each request's queue time and batch size.
                var restBuffers = Enumerable.Range(0, Tasks).Select(_ => new byte[answer.Length + 4096]).ToArray();
                async Task Rest(int i) => await RestBinary.Send(http, path, body, header, restBuffers[i]);
                async Task Shared(int i)
                {
                    inputs[i].CopyTo(regions[2 * i].Span);
                    using var content = new ByteArrayContent(requests[i]);
                    content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
                    using var r = await http.PostAsync(path, content);
                    var text = await r.Content.ReadAsStringAsync(); // a few hundred bytes: names and shapes, no data
                    if (!r.IsSuccessStatusCode) throw new InvalidOperationException($"POST {path}: {(int)r.StatusCode} {text}");
                    regions[2 * i + 1].Span.CopyTo(outputs[i]);
                }

                // Before anything is timed: both ways answer the input itself (times 1.0), from every loop's regions.
                if (!restOutputs["output"].Span.SequenceEqual(data)) throw new InvalidOperationException($"REST binary ({model}): the output is not the input");
                for (int i = 0; i < Tasks; i++)
                {
                    regions[2 * i + 1].Span.Clear();
                    await Shared(i);
                    if (!outputs[i].AsSpan().SequenceEqual(data)) throw new InvalidOperationException($"shared memory ({model}): the output region of loop {i} does not hold the input");
                }

                var configuration = $"FP32[1,{Floats}] in and out (4 MiB each), {settings}, {Tasks} concurrent, one C# client";
                var (shm, rest) = Wrk.Paired(
                    (s, r) => ClientLoad.Run($"mlos_core system shared memory, 4 MiB in + 4 MiB out, {settings} (C# client)", Tasks, Shared, 1, s, server, r),
                    (s, r) => ClientLoad.Run($"mlos_core KServe v2 binary, 4 MiB in + 4 MiB out, {settings} (C# client)", Tasks, Rest, 1, s, server, r));
                Report.Ratio("Shared memory (shm / REST binary, throughput)", configuration, shm, rest, shm.RequestsPerSecond / rest.RequestsPerSecond, goal);
                Report.Ratio("Shared memory (shm / REST binary, p50)", configuration, shm, rest, shm.P50Ms / rest.P50Ms);
                Report.Ratio("Shared memory (shm / REST binary, p99)", configuration, shm, rest, shm.P99Ms / rest.P99Ms);
            }

            await Compare("big-identity", "default settings", ">= 3");
            await Compare("big-identity-tuned", "batching off, ORT CPU arena on", "");
        }
        finally
        {
            foreach (var region in regions) await region.DisposeAsync();
        }
    }
}
