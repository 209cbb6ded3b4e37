using Google.Protobuf;
using Grpc.Net.Client;
using Mlos.Server.Grpc.Protocol;
using static Mlos.Server.Grpc.Protocol.ModelInferRequest.Types;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// Section "grpc": inference.GRPCInferenceService/ModelInfer with raw contents against REST with
/// the binary extension, the 16-32-4 MLP at one row, 64 requests in flight. One load generator for
/// both, h2load (gRPC over HTTP/2, REST over HTTP/1.1), so that the generator's own cost is not in
/// the ratio. The goal's row is gRPC as a client's channel sends (8 connections of 8 streams)
/// against REST's 64 connections; 64 single-stream connections each way and REST under wrk (the
/// other sections' generator) are rows beside it. Each h2load run also reports the server's CPU time per request, which the
/// load generator sharing these cores does not blur.
/// </summary>
internal static class GrpcVsRest
{
    private const string Model = "mlp-grpc";

    public static async Task Run(MlosServer server, Bodies bodies)
    {
        await server.Register(Model, $$"""{"model_id":"{{Model}}","path":"mlp.onnx"}"""); // default settings, as a user registers it
        var request = new ModelInferRequest { ModelName = Model };
        var input = new InferInputTensor { Name = "input", Datatype = "FP32" };
        input.Shape.AddRange([1, 16]);
        request.Inputs.Add(input);
        request.RawInputContents.Add(ByteString.CopyFrom(Bodies.FloatBytes(16)));
        var grpcBody = bodies.Grpc(Model, request);
        var (restBody, header) = bodies.Binary(Model, "input", 16);
        var path = $"/v2/models/{Model}/infer";
        await SameAnswer(server, request, path, restBody, header);

        var grpcUrl = $"http://127.0.0.1:{server.GrpcPort}/inference.GRPCInferenceService/ModelInfer";
        string[] grpcHeaders = ["content-type: application/grpc", "te: trailers"];
        string[] restHeaders = ["content-type: application/octet-stream", $"inference-header-content-length: {header}"];
        LoadResult Grpc(int connections, int streams, int seconds, bool report) =>
            H2load.Run($"mlos_core gRPC ModelInfer raw contents, MLP 16-32-4 (h2load, {streams} stream{(streams == 1 ? "" : "s")} a connection)", grpcUrl, grpcBody,
                grpcHeaders, http1: false, connections, streams, server, Model, seconds, report);
        LoadResult Rest(int seconds, bool report) =>
            H2load.Run("mlos_core KServe v2 binary, MLP 16-32-4 (h2load --h1)", server.Url(path), restBody, restHeaders,
                http1: true, connections: 64, streams: 1, server, Model, seconds, report);

        // The ratio with the goal (64 concurrent streams against 64 connections): gRPC as its
        // clients send it, a few connections with many streams each (a channel multiplexes),
        // against REST's 64 HTTP/1.1 connections (which cannot multiplex).
        const string Configuration = "MLP 16-32-4, FP32[1,16], 64 in flight, h2load both ways";
        var (multiplexed, rest2) = Wrk.Paired((s, r) => Grpc(8, 8, s, r), Rest);
        Report.Ratio("gRPC (gRPC / REST binary, throughput)", $"{Configuration}, gRPC 8 connections x 8 streams, REST 64 connections", multiplexed, rest2,
            multiplexed.RequestsPerSecond / rest2.RequestsPerSecond, ">= 0.8");
        Report.Ratio("gRPC (gRPC / REST binary, p99)", $"{Configuration}, gRPC 8 connections x 8 streams, REST 64 connections", multiplexed, rest2,
            multiplexed.P99Ms / rest2.P99Ms);
        // One stream per connection, 64 connections each way, so that the protocol is all that
        // differs: HTTP/2's per-connection cost shows (no goal; no gRPC client sends this way).
        var (grpc, rest) = Wrk.Paired((s, r) => Grpc(64, 1, s, r), Rest);
        Report.Ratio("gRPC (gRPC / REST binary, throughput)", $"{Configuration}, 64 connections each", grpc, rest, grpc.RequestsPerSecond / rest.RequestsPerSecond);
        Report.Ratio("gRPC (gRPC / REST binary, p99)", $"{Configuration}, 64 connections each", grpc, rest, grpc.P99Ms / rest.P99Ms);

        var wrk = Wrk.Run("mlos_core KServe v2 binary, MLP 16-32-4 (wrk)", server.Url(path), restBody, "application/octet-stream", header);
        Report.Ratio("gRPC (gRPC under h2load / REST binary under wrk, throughput)", "MLP 16-32-4, FP32[1,16], 64 connections, different load generators",
            grpc, wrk, grpc.RequestsPerSecond / wrk.RequestsPerSecond);
    }

    /// <summary>
    /// Before anything is timed: the body h2load will send, as a real gRPC client sends it, answers
    /// grpc-status 0 (the client throws otherwise) and the same bytes that REST binary answers.
    /// </summary>
    private static async Task SameAnswer(MlosServer server, ModelInferRequest request, string path, string restBody, int header)
    {
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{server.GrpcPort}");
        var answer = await new GRPCInferenceService.GRPCInferenceServiceClient(channel).ModelInferAsync(request);
        var (_, outputs) = await RestBinary.Post(server.Http, path, File.ReadAllBytes(restBody), header);
        if (answer.Outputs.Count != 1 || answer.Outputs[0].Name != "output" || !answer.Outputs[0].Shape.SequenceEqual([1L, 4L])
            || !answer.RawOutputContents[0].Span.SequenceEqual(outputs["output"].Span))
            throw new InvalidOperationException($"gRPC and REST binary answer differently: {answer}");
    }
}
