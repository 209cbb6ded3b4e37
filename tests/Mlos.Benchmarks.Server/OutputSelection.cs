using Google.Protobuf;
using Grpc.Net.Client;
using Mlos.Server.Grpc.Protocol;
using static Mlos.Server.Grpc.Protocol.ModelInferRequest.Types;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// Section "outputs": requested-output selection on many_outputs.onnx (1 MiB in, twelve 1 MiB
/// outputs, each the input times a constant), every output (no outputs list) against one named
/// output, over REST binary and over gRPC: the bytes of each answer, and throughput from
/// <see cref="ClientLoad"/> (<see cref="Tasks"/> loops: 12 MiB answers saturate these cores with
/// few in flight), median of 3 alternating short runs each so that the section stays under a minute.
/// Apart from the wire, the server's own compute_infer time per request (one at a time) says
/// whether the plugin computes less when fewer outputs are asked for.
/// </summary>
internal static class OutputSelection
{
    private const int Tasks = 2, Seconds = 2;
    private const double WarmUpSeconds = 0.5;
    private const int Floats = 1 << 18, Bytes = Floats * 4, Outputs = 12;
    private const string Model = "many-outputs", Chosen = "out7"; // out7 = input * 8, exact in FP32

    public static async Task Run(MlosServer server)
    {
        await server.Register(Model, $$"""{"model_id":"{{Model}}","path":"many_outputs.onnx"}"""); // default settings
        var data = Bodies.FloatBytes(Floats);
        var chosen = System.Runtime.InteropServices.MemoryMarshal.AsBytes(Bodies.Floats(Floats).Select(f => f * 8).ToArray().AsSpan()).ToArray();
        var model = $"many_outputs: FP32[1,{Floats}] in, {Outputs} outputs of 1 MiB";
        var configuration = $"{model}, {Tasks} concurrent";

        // --- REST binary.
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Tasks }) { BaseAddress = new Uri(server.Url("")), Timeout = TimeSpan.FromSeconds(60) };
        var path = $"/v2/models/{Model}/infer";
        var input = $$$"""{"name":"input","shape":[1,{{{Floats}}}],"datatype":"FP32","parameters":{"binary_data_size":{{{Bytes}}}}}""";
        var (allBody, allHeader) = RestBinary.Body($$$"""{"inputs":[{{{input}}}],"parameters":{"binary_data_output":true}}""", data);
        var (oneBody, oneHeader) = RestBinary.Body($$$"""{"inputs":[{{{input}}}],"outputs":[{"name":"{{{Chosen}}}","parameters":{"binary_data":true}}]}""", data);
        var (allAnswer, allOutputs) = await RestBinary.Post(http, path, allBody, allHeader);
        var (oneAnswer, oneOutputs) = await RestBinary.Post(http, path, oneBody, oneHeader);
        Check("REST binary, every output", allOutputs.Keys, allOutputs[Chosen].Span, Outputs, chosen);
        Check("REST binary, one output", oneOutputs.Keys, oneOutputs[Chosen].Span, 1, chosen);
        // Room for the answer's JSON header to grow: it reports each request's queue time and batch size.
        var buffers = Enumerable.Range(0, Tasks).Select(_ => new byte[allAnswer.Length + 4096]).ToArray();
        // What the plugin computes, apart from what goes on the wire: the server's compute_infer time per request.
        double oneCompute = await ComputeMs(server, () => RestBinary.Send(http, path, oneBody, oneHeader, buffers[0]));
        double allCompute = await ComputeMs(server, () => RestBinary.Send(http, path, allBody, allHeader, buffers[0]));
        Report.Fact("Output selection", $"server compute_infer per request (its statistics), {Chosen} requested, {ComputeRequests} one at a time", $"{oneCompute:F2} ms");
        Report.Fact("Output selection", $"server compute_infer per request (its statistics), every output, {ComputeRequests} one at a time", $"{allCompute:F2} ms");
        Report.Ratio("Output selection (one / every output, server compute_infer)", $"REST binary, {model}, one at a time", $"{oneCompute:F2} ms", $"{allCompute:F2} ms",
            oneCompute / allCompute);
        var (restOne, restAll) = Wrk.Paired(
            (s, r) => ClientLoad.Run($"mlos_core KServe v2 binary, many_outputs, {Chosen} requested (C# client)", Tasks,
                i => RestBinary.Send(http, path, oneBody, oneHeader, buffers[i]), WarmUpSeconds, s, server, r),
            (s, r) => ClientLoad.Run($"mlos_core KServe v2 binary, many_outputs, every output (C# client)", Tasks,
                i => RestBinary.Send(http, path, allBody, allHeader, buffers[i]), WarmUpSeconds, s, server, r),
            seconds: Seconds);
        Summarize(configuration, "REST binary", restOne, restAll, oneAnswer.Length, allAnswer.Length, "answer body: JSON header and binary outputs");

        // --- gRPC: raw contents both ways; answers of 12 MiB need more than the client's default 4 MB limit.
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{server.GrpcPort}", new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20 });
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var all = new ModelInferRequest { ModelName = Model };
        var tensor = new InferInputTensor { Name = "input", Datatype = "FP32" };
        tensor.Shape.AddRange([1, Floats]);
        all.Inputs.Add(tensor);
        all.RawInputContents.Add(ByteString.CopyFrom(data));
        var one = all.Clone();
        one.Outputs.Add(new InferRequestedOutputTensor { Name = Chosen });
        var grpcAll = await client.ModelInferAsync(all);
        var grpcOne = await client.ModelInferAsync(one);
        static ReadOnlySpan<byte> Raw(ModelInferResponse a) => a.RawOutputContents[a.Outputs.ToList().FindIndex(o => o.Name == Chosen)].Span;
        Check("gRPC, every output", grpcAll.Outputs.Select(o => o.Name), Raw(grpcAll), Outputs, chosen);
        Check("gRPC, one output", grpcOne.Outputs.Select(o => o.Name), Raw(grpcOne), 1, chosen);
        var (rpcOne, rpcAll) = Wrk.Paired(
            (s, r) => ClientLoad.Run($"mlos_core gRPC ModelInfer raw contents, many_outputs, {Chosen} requested (C# client)", Tasks,
                async _ => await client.ModelInferAsync(one), WarmUpSeconds, s, server, r),
            (s, r) => ClientLoad.Run($"mlos_core gRPC ModelInfer raw contents, many_outputs, every output (C# client)", Tasks,
                async _ => await client.ModelInferAsync(all), WarmUpSeconds, s, server, r),
            seconds: Seconds);
        Summarize(configuration, "gRPC", rpcOne, rpcAll, grpcOne.CalculateSize(), grpcAll.CalculateSize(), "the ModelInferResponse message");
    }

    private const int ComputeRequests = 20;

    /// <summary>The model's compute_infer time per request over <see cref="ComputeRequests"/> requests, one at a time, in ms.</summary>
    private static async Task<double> ComputeMs(MlosServer server, Func<Task> request)
    {
        await request(); // warm
        var before = await server.Stats(Model);
        for (int i = 0; i < ComputeRequests; i++) await request();
        var after = await server.Stats(Model);
        return (after.ComputeInferNs - before.ComputeInferNs) / 1e6 / (after.Success - before.Success);
    }

    /// <summary>Before anything is timed: the answer has the outputs asked for, and the chosen one holds input * 8.</summary>
    private static void Check(string what, IEnumerable<string> names, ReadOnlySpan<byte> chosenBytes, int count, byte[] expected)
    {
        var got = names.ToArray();
        if (got.Length != count || (count == 1 && got[0] != Chosen) || !chosenBytes.SequenceEqual(expected))
            throw new InvalidOperationException($"{what}: answered outputs [{string.Join(", ", got)}], {Chosen} {(chosenBytes.SequenceEqual(expected) ? "right" : "wrong")}");
    }

    private static void Summarize(string configuration, string protocol, LoadResult one, LoadResult all, long oneBytes, long allBytes, string measuredAs)
    {
        Report.Fact("Output selection", $"{protocol}: bytes of an answer with {Chosen} requested ({measuredAs})", $"{oneBytes} B");
        Report.Fact("Output selection", $"{protocol}: bytes of an answer with every output ({measuredAs})", $"{allBytes} B");
        Report.Ratio("Output selection (one / every output, answer bytes)", $"{protocol}, {configuration}", $"{oneBytes} B", $"{allBytes} B",
            oneBytes / (double)allBytes);
        Report.Ratio("Output selection (one / every output, throughput)", $"{protocol}, {configuration}", one, all,
            one.RequestsPerSecond / all.RequestsPerSecond);
    }
}
