using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Inference = Mlos.Server.Grpc.Protocol;
using Mlos.Server.Grpc.Protocol;
using Mlos.Tests;
using static Mlos.Server.Grpc.Protocol.ModelInferRequest.Types;
using static Mlos.Server.Tests.GrpcRequests;

namespace Mlos.Server.Tests;

/// <summary>
/// <c>inference.GRPCInferenceService</c> through a real gRPC client (Grpc.Net.Client over stubs
/// generated from the server's own .proto files) against the published server on loopback.
/// </summary>
public sealed class GrpcServiceTests : IClassFixture<GrpcServiceTests.Server>
{
    public sealed class Server() : GrpcServer(
        [("multi", "multi_io.onnx"), ("mlp", "mlp.onnx"), ("dtypes", "dtypes.onnx"), ("strings", "strings.onnx")], "--grpc-max-message-mb", "1");

    private readonly Server _server;
    private GRPCInferenceService.GRPCInferenceServiceClient Client => _server.Client;

    public GrpcServiceTests(Server server) => _server = server;

    private static RefTensor[] Reference(string file) => RefTensor.Read(file);

    private static byte[] RawBytes(RefTensor t) => t.Bytes();

    /// <summary>The same values in the typed contents field of their datatype.</summary>
    private static InferTensorContents Typed(RefTensor t)
    {
        var c = new InferTensorContents();
        var inv = CultureInfo.InvariantCulture;
        foreach (var v in t.Values)
        {
            switch (t.Dtype)
            {
                case "BOOL": c.BoolContents.Add(v == "1"); break;
                case "INT8" or "INT16" or "INT32": c.IntContents.Add(int.Parse(v, inv)); break;
                case "INT64": c.Int64Contents.Add(long.Parse(v, inv)); break;
                case "UINT8" or "UINT16" or "UINT32": c.UintContents.Add(uint.Parse(v, inv)); break;
                case "UINT64": c.Uint64Contents.Add(ulong.Parse(v, inv)); break;
                case "FP32": c.Fp32Contents.Add(float.Parse(v, inv)); break;
                case "FP64": c.Fp64Contents.Add(double.Parse(v, inv)); break;
                case "BYTES": c.BytesContents.Add(ByteString.CopyFrom(Convert.FromHexString(v))); break;
                default: throw new ArgumentException($"{t.Dtype} has no contents field");
            }
        }
        return c;
    }

    [Fact]
    public async Task Health_and_server_metadata_answer()
    {
        Assert.True((await Client.ServerLiveAsync(new ServerLiveRequest())).Live);
        Assert.True((await Client.ServerReadyAsync(new ServerReadyRequest())).Ready);
        var meta = await Client.ServerMetadataAsync(new ServerMetadataRequest());
        Assert.Equal("mlos-core", meta.Name);
        Assert.Contains("statistics", meta.Extensions);
        Assert.Contains("model_repository", meta.Extensions);
        Assert.DoesNotContain("system_shared_memory", meta.Extensions); // not asked for at start
        Assert.True((await Client.ModelReadyAsync(new ModelReadyRequest { Name = "mlp" })).Ready);
        Assert.True((await Client.ModelReadyAsync(new ModelReadyRequest { Name = "mlp", Version = "1" })).Ready);
        // As Triton answers: a model or version it does not have is not ready, not an error.
        Assert.False((await Client.ModelReadyAsync(new ModelReadyRequest { Name = "none" })).Ready);
        Assert.False((await Client.ModelReadyAsync(new ModelReadyRequest { Name = "mlp", Version = "7" })).Ready);
        var unnamed = await Assert.ThrowsAsync<RpcException>(() => Client.ModelReadyAsync(new ModelReadyRequest()).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, unnamed.StatusCode);
    }

    [Fact]
    public async Task Model_metadata_and_config_describe_the_model()
    {
        var meta = await Client.ModelMetadataAsync(new ModelMetadataRequest { Name = "multi" });
        Assert.Equal("onnxruntime_onnx", meta.Platform);
        Assert.Equal(["1"], meta.Versions);
        Assert.Equal(["input_ids", "features"], meta.Inputs.Select(i => i.Name));
        Assert.Equal("INT64", meta.Inputs[0].Datatype);
        Assert.Equal(["logits", "ids_sum", "mask"], meta.Outputs.Select(o => o.Name));

        // The MLP batches by default: Triton's convention, dims without the batch dimension.
        var config = (await Client.ModelConfigAsync(new ModelConfigRequest { Name = "mlp" })).Config;
        Assert.Equal("mlp", config.Name);
        Assert.Equal("onnxruntime", config.Backend);
        Assert.Equal(64, config.MaxBatchSize);
        Assert.NotNull(config.DynamicBatching);
        Assert.Equal(DataType.TypeFp32, config.Input.Single().DataType);
        Assert.Equal([16L], config.Input.Single().Dims);
        Assert.Equal([4L], config.Output.Single().Dims);
        var strings = (await Client.ModelConfigAsync(new ModelConfigRequest { Name = "strings" })).Config;
        Assert.Equal(DataType.TypeString, strings.Input.Single().DataType);
    }

    [Theory]
    [MemberData(nameof(RefTensor.Fixtures), MemberType = typeof(RefTensor))]
    public async Task Raw_contents_answer_the_reference_bit_for_bit(string model, string refFile)
    {
        var reference = Reference(refFile);
        var answer = await Client.ModelInferAsync(Raw(model, reference.Where(t => t.Role == "in").ToArray(), id: "g1"));
        Assert.Equal("g1", answer.Id);
        Assert.Equal(model, answer.ModelName);
        Assert.Equal(answer.Outputs.Count, answer.RawOutputContents.Count);
        var got = Outputs(answer);
        foreach (var o in reference.Where(t => t.Role == "out"))
        {
            var tensor = answer.Outputs.Single(x => x.Name == o.Name);
            Assert.Equal(o.Dtype, tensor.Datatype);
            Assert.Equal(o.Shape, tensor.Shape);
            // Computed floats: the .ref holds what ONNX Runtime in Python answered, which may differ in the last bit.
            if (o.Dtype == "FP32" && model is "mlp" or "multi") Close(RawBytes(o), got[o.Name]);
            else Assert.Equal(RawBytes(o), got[o.Name]);
        }
    }

    private static void Close(byte[] expected, byte[] got) => Assert.True(GrpcRequests.MaxDifference(expected, got) <= GrpcRequests.Tolerance);

    [Theory]
    [MemberData(nameof(RefTensor.Fixtures), MemberType = typeof(RefTensor))]
    public async Task Rest_json_rest_binary_grpc_raw_and_grpc_typed_give_identical_bytes(string model, string refFile)
    {
        // FP16 has no typed field and the protocol forbids mixing typed with raw, so a model that
        // needs an FP16 input runs raw only here (Typed_contents_of_every_datatype_… sends the
        // other datatypes typed).
        var inputs = Reference(refFile).Where(t => t.Role == "in").ToArray();
        var grpcRaw = Outputs(await Client.ModelInferAsync(Raw(model, inputs)));

        var restBinary = await RestBinary(model, inputs);
        var restJson = await RestJson(model, inputs);
        foreach (var (name, bytes) in grpcRaw)
        {
            Assert.Equal(bytes, restBinary[name]);
            if (restJson.TryGetValue(name, out var json)) Assert.Equal(bytes, json);
        }
        if (inputs.Any(t => t.Dtype == "FP16")) return;
        var typed = new ModelInferRequest { ModelName = model };
        foreach (var t in inputs)
        {
            var input = Input(t);
            input.Contents = Typed(t);
            typed.Inputs.Add(input);
        }
        var grpcTyped = Outputs(await Client.ModelInferAsync(typed));
        foreach (var (name, bytes) in grpcRaw) Assert.Equal(bytes, grpcTyped[name]);
    }

    /// <summary>
    /// Typed contents of every datatype that has a contents field, each at its extremes: the
    /// dtypes fixture cannot be sent typed (it needs an FP16 input, which has no typed field, and
    /// the protocol forbids mixing typed with raw), so the same tensors go to a Python model that
    /// echoes each input, on a server of its own. Typed and raw requests must get the same bytes,
    /// and both the bytes the reference holds.
    /// </summary>
    [Fact]
    public async Task Typed_contents_of_every_datatype_answer_what_raw_contents_do()
    {
        var inputs = Reference("dtypes.ref").Where(t => t.Role == "in" && t.Dtype != "FP16").ToArray();
        Assert.Equal(11, inputs.Length); // BOOL, INT8-64, UINT8-64, FP32, FP64
        var root = Directory.CreateTempSubdirectory("mlos-typed-").FullName;
        try
        {
            var module = Directory.CreateDirectory(Path.Combine(root, "plugins", "python")).FullName;
            var io = string.Join(",", inputs.Select(t => $"(\"{t.Name[3..]}\", \"{t.Dtype}\")"));
            File.WriteAllText(Path.Combine(module, "echo_all.py"), $$"""
                import numpy as np
                TENSORS = [{{io}}]
                class EchoAll:
                    def get_model_io(self, handle):
                        return {"inputs": [{"name": "in_" + n, "dtype": d, "shape": [4]} for n, d in TENSORS],
                                "outputs": [{"name": "out_" + n, "dtype": d, "shape": [4]} for n, d in TENSORS]}
                    def inference(self, handle, data):
                        return data
                    def infer(self, handle, inputs):
                        return {"out_" + n: np.array(inputs["in_" + n]) for n, _ in TENSORS}
                """);
            File.WriteAllText(Path.Combine(root, "echo_all.model"), "");
            using var server = new ServerProcess(root, "--plugin-dir", Path.Combine(root, "plugins"));
            var bridge = Path.Combine(BuildTree.PluginDir, "libmlos_python_plugin.so");
            var config = $$"""{"module":"echo_all","class":"EchoAll","path":"{{module}}"}""";
            using (var r = await server.Client.PostAsync("/plugins/register", new StringContent(
                       $$"""{"endpoint":"{{bridge}}","id":"echo-all","config":{{config}}}""", Encoding.UTF8, "application/json")))
                Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
            using (var r = await server.Client.PostAsync("/models/register", new StringContent(
                       """{"model_id":"echo-all","plugin_id":"echo-all","path":"echo_all.model"}""", Encoding.UTF8, "application/json")))
                Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
            using var channel = server.Grpc();
            var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);

            var typed = new ModelInferRequest { ModelName = "echo-all" };
            foreach (var t in inputs)
            {
                var input = Input(t);
                input.Contents = Typed(t);
                typed.Inputs.Add(input);
            }
            var fromTyped = Outputs(await client.ModelInferAsync(typed));
            var fromRaw = Outputs(await client.ModelInferAsync(Raw("echo-all", inputs)));
            foreach (var t in inputs)
            {
                var name = "out_" + t.Name[3..];
                Assert.Equal(RawBytes(t), fromTyped[name]);
                Assert.Equal(RawBytes(t), fromRaw[name]);
            }
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    private Task<Dictionary<string, byte[]>> RestBinary(string model, RefTensor[] inputs) => BinaryInfer.Post(_server.Process.Client, model, inputs);

    /// <summary>JSON in and out; outputs turned back into tensor bytes (FP16 and BYTES travel only as binary there, and are left out).</summary>
    private async Task<Dictionary<string, byte[]>> RestJson(string model, RefTensor[] inputs)
    {
        if (inputs.Any(t => t.Dtype is "FP16" or "BYTES")) return [];
        var json = "{\"inputs\":[" + string.Join(",", inputs.Select(t =>
            $"{{\"name\":\"{t.Name}\",\"shape\":[{string.Join(",", t.Shape)}],\"datatype\":\"{t.Dtype}\",\"data\":[{string.Join(",", t.Values.Select(v => t.Dtype == "BOOL" ? (v == "1" ? "true" : "false") : v))}]}}")) + "]}";
        using var response = await _server.Process.Client.PostAsync($"/v2/models/{model}/infer", new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        var outputs = new Dictionary<string, byte[]>();
        foreach (var o in JsonDocument.Parse(text).RootElement.GetProperty("outputs").EnumerateArray())
        {
            var dtype = o.GetProperty("datatype").GetString()!;
            if (dtype == "FP16") continue;
            var values = o.GetProperty("data").EnumerateArray().Select(v => v.ValueKind switch
            {
                JsonValueKind.True => "1",
                JsonValueKind.False => "0",
                _ => v.GetRawText(),
            }).ToArray();
            outputs[o.GetProperty("name").GetString()!] = RawBytes(new RefTensor("out", "", dtype, [], values));
        }
        return outputs;
    }

    [Fact]
    public async Task Requested_outputs_select_and_unknown_or_repeated_names_are_invalid()
    {
        var inputs = Reference("multi_io.ref").Where(t => t.Role == "in").ToArray();
        var one = Raw("multi", inputs);
        one.Outputs.Add(new InferRequestedOutputTensor { Name = "ids_sum" });
        var answer = await Client.ModelInferAsync(one);
        Assert.Equal(["ids_sum"], answer.Outputs.Select(o => o.Name));
        Assert.Single(answer.RawOutputContents);
        Assert.Equal(new long[] { 449, 237 }.SelectMany(BitConverter.GetBytes), answer.RawOutputContents[0].ToByteArray());

        var unknown = Raw("multi", inputs);
        unknown.Outputs.Add(new InferRequestedOutputTensor { Name = "nope" });
        var e = await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(unknown).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("no output 'nope'", e.Status.Detail);

        var twice = Raw("multi", inputs);
        twice.Outputs.Add(new InferRequestedOutputTensor { Name = "mask" });
        twice.Outputs.Add(new InferRequestedOutputTensor { Name = "mask" });
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(twice).ResponseAsync)).StatusCode);
    }

    public static TheoryData<string, string> BadRequests => new()
    {
        { "mixed", "raw_input_contents" },
        { "raw-count", "raw_input_contents has 1 entries for 2 inputs" },
        { "no-contents", "has no contents" },
        { "wrong-field", "its values go in fp32_contents" },
        { "too-few", "has 3 values; its shape needs 4" },
        { "fp16-typed", "send it as raw_input_contents" },
        { "int8-range", "holds 300" },
        { "bad-dtype", "needs a KServe datatype" },
        { "raw-size", "bytes" },
        { "negative-dim", "non-negative" },
        { "no-model", "names no model" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Malformed_requests_are_invalid_argument_with_a_plain_reason(string kind, string reason)
    {
        var r = new ModelInferRequest { ModelName = "dtypes" };
        InferInputTensor T(string name, string dtype, params long[] shape)
        {
            var t = new InferInputTensor { Name = name, Datatype = dtype };
            t.Shape.AddRange(shape);
            r.Inputs.Add(t);
            return t;
        }
        switch (kind)
        {
            case "mixed":
                T("in_fp32", "FP32", 1, 4).Contents = new InferTensorContents { Fp32Contents = { 1, 2, 3, 4 } };
                r.RawInputContents.Add(ByteString.CopyFrom(new byte[16]));
                break;
            case "raw-count":
                T("in_fp32", "FP32", 1, 4);
                T("in_fp64", "FP64", 1, 4);
                r.RawInputContents.Add(ByteString.CopyFrom(new byte[16]));
                break;
            case "no-contents": T("in_fp32", "FP32", 1, 4); break;
            case "wrong-field": T("in_fp32", "FP32", 1, 4).Contents = new InferTensorContents { IntContents = { 1, 2, 3, 4 } }; break;
            case "too-few": T("in_fp32", "FP32", 1, 4).Contents = new InferTensorContents { Fp32Contents = { 1, 2, 3 } }; break;
            case "fp16-typed": T("in_fp16", "FP16", 1, 4).Contents = new InferTensorContents { UintContents = { 1, 2, 3, 4 } }; break;
            case "int8-range": T("in_int8", "INT8", 1, 4).Contents = new InferTensorContents { IntContents = { 1, 300, 3, 4 } }; break;
            case "bad-dtype": T("in_fp32", "FLOAT", 1, 4).Contents = new InferTensorContents { Fp32Contents = { 1, 2, 3, 4 } }; break;
            case "raw-size":
                T("in_fp32", "FP32", 1, 4);
                r.RawInputContents.Add(ByteString.CopyFrom(new byte[15]));
                break;
            case "negative-dim": T("in_fp32", "FP32", 1, -4).Contents = new InferTensorContents { Fp32Contents = { 1, 2, 3, 4 } }; break;
            case "no-model": r.ModelName = ""; break;
        }
        var e = await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(r).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains(reason, e.Status.Detail);
        Assert.DoesNotContain("Exception", e.Status.Detail);
    }

    /// <summary>Bytes that are no protobuf message: field 1 says 100 bytes of string follow, 3 do.</summary>
    private static readonly byte[] NotAMessage = [0x0A, 100, (byte)'a', (byte)'b', (byte)'c'];

    private static readonly Marshaller<byte[]> Unparsed = Marshallers.Create(b => b, b => b);

    [Fact]
    public async Task A_message_that_does_not_parse_is_invalid_argument_on_every_kind_of_call()
    {
        var invoker = _server.Channel.CreateCallInvoker();
        foreach (var name in new[] { "ModelInfer", "ServerLive", "ModelMetadata", "RepositoryModelLoad" })
        {
            var method = new Method<byte[], byte[]>(MethodType.Unary, "inference.GRPCInferenceService", name, Unparsed, Unparsed);
            var e = await Assert.ThrowsAsync<RpcException>(() => invoker.AsyncUnaryCall(method, null, new CallOptions(), NotAMessage).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains($"not a valid {name}Request message", e.Status.Detail);
            Assert.DoesNotContain("Exception", e.Status.Detail);
        }
        var stream = new Method<byte[], byte[]>(MethodType.DuplexStreaming, "inference.GRPCInferenceService", "ModelStreamInfer", Unparsed, Unparsed);
        using var call = invoker.AsyncDuplexStreamingCall(stream, null, new CallOptions());
        await call.RequestStream.WriteAsync(NotAMessage);
        var s = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext());
        Assert.Equal(StatusCode.InvalidArgument, s.StatusCode);
        Assert.Contains("not a valid ModelInferRequest message", s.Status.Detail);
        // The server serves on.
        Assert.True((await Client.ServerLiveAsync(new ServerLiveRequest())).Live);
    }

    /// <summary>One input of a request that the three front doors all send: name, dtype, shape.</summary>
    private sealed record Sent(string Name, string Dtype, long[] Shape);

    public static TheoryData<string, string> SameMistakes => new()
    {
        { "unknown-input", "model 'multi' has no input 'ids' (its inputs: input_ids, features)" },
        { "wrong-dtype", "input 'features' is FP64; model 'multi' expects FP32" },
        { "wrong-shape", "input 'features' has shape [1,5]; model 'multi' expects [-1,4] (-1: any)" },
        { "missing-input", "model 'multi' needs input 'features' (its inputs: input_ids, features)" },
        { "unknown-output", "model 'multi' has no output 'nope' (its outputs: logits, ids_sum, mask)" },
    };

    /// <summary>
    /// The core checks every request once against the model's specs: REST JSON, REST binary and
    /// gRPC get the same words for the same mistake.
    /// </summary>
    [Theory]
    [MemberData(nameof(SameMistakes))]
    public async Task The_same_mistake_gets_the_same_message_through_every_front_door(string kind, string message)
    {
        Sent ids = new("input_ids", "INT64", [1, 8]), features = new("features", "FP32", [1, 4]);
        Sent[] inputs = kind switch
        {
            "unknown-input" => [ids with { Name = "ids" }, features],
            "wrong-dtype" => [ids, features with { Dtype = "FP64" }],
            "wrong-shape" => [ids, features with { Shape = [1, 5] }],
            "missing-input" => [ids],
            _ => [ids, features],
        };
        string? output = kind == "unknown-output" ? "nope" : null;
        int Size(Sent t) => (int)t.Shape.Aggregate(1L, (a, b) => a * b) * (t.Dtype is "FP32" ? 4 : 8);
        string Values(Sent t) => string.Join(",", Enumerable.Repeat("1", Size(t) / (t.Dtype is "FP32" ? 4 : 8)));
        string Outputs = output is null ? "" : $",\"outputs\":[{{\"name\":\"{output}\"}}]";

        var json = "{\"inputs\":[" + string.Join(",", inputs.Select(t =>
            $"{{\"name\":\"{t.Name}\",\"shape\":[{string.Join(",", t.Shape)}],\"datatype\":\"{t.Dtype}\",\"data\":[{Values(t)}]}}")) + "]" + Outputs + "}";
        using var restJson = await _server.Process.Client.PostAsync("/v2/models/multi/infer", new StringContent(json, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, restJson.StatusCode);
        var jsonError = JsonDocument.Parse(await restJson.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString();

        var head = Encoding.UTF8.GetBytes("{\"inputs\":[" + string.Join(",", inputs.Select(t =>
            $"{{\"name\":\"{t.Name}\",\"shape\":[{string.Join(",", t.Shape)}],\"datatype\":\"{t.Dtype}\",\"parameters\":{{\"binary_data_size\":{Size(t)}}}}}")) + "]" + Outputs + "}");
        using var binary = new HttpRequestMessage(HttpMethod.Post, "/v2/models/multi/infer")
        { Content = new ByteArrayContent([.. head, .. new byte[inputs.Sum(Size)]]) };
        binary.Content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", head.Length.ToString());
        using var restBinary = await _server.Process.Client.SendAsync(binary);
        Assert.Equal(HttpStatusCode.BadRequest, restBinary.StatusCode);
        var binaryError = JsonDocument.Parse(await restBinary.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString();

        var grpc = new ModelInferRequest { ModelName = "multi" };
        foreach (var t in inputs)
        {
            var input = new InferInputTensor { Name = t.Name, Datatype = t.Dtype };
            input.Shape.AddRange(t.Shape);
            grpc.Inputs.Add(input);
            grpc.RawInputContents.Add(ByteString.CopyFrom(new byte[Size(t)]));
        }
        if (output is not null) grpc.Outputs.Add(new InferRequestedOutputTensor { Name = output });
        var e = await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(grpc).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);

        Assert.Equal(message, jsonError);
        Assert.Equal(message, binaryError);
        Assert.Equal(message, e.Status.Detail);
    }

    [Fact]
    public async Task Unknown_models_and_versions_are_not_found()
    {
        var inputs = Reference("mlp.ref").Where(t => t.Role == "in").ToArray();
        var none = Raw("none", inputs);
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(none).ResponseAsync)).StatusCode);
        var version = Raw("mlp", inputs);
        version.ModelVersion = "3";
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(version).ResponseAsync)).StatusCode);
        version.ModelVersion = "1";
        Assert.Single((await Client.ModelInferAsync(version)).Outputs);
    }

    [Fact]
    public async Task A_message_over_the_limit_is_resource_exhausted()
    {
        // The fixture's server takes at most 1 MiB a message (--grpc-max-message-mb 1).
        var r = new ModelInferRequest { ModelName = "mlp" };
        var t = new InferInputTensor { Name = "input", Datatype = "FP32" };
        t.Shape.AddRange([(1 << 20) / 64, 16]);
        r.Inputs.Add(t);
        r.RawInputContents.Add(ByteString.CopyFrom(new byte[(1 << 20) / 64 * 16 * 4]));
        var e = await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(r).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.True((await Client.ServerLiveAsync(new ServerLiveRequest())).Live); // and the server serves on
    }

    [Fact]
    public async Task A_stream_answers_every_request_in_order_and_reports_errors_inside_it()
    {
        var inputs = Reference("multi_io.ref").Where(t => t.Role == "in").ToArray();
        using var call = Client.ModelStreamInfer();
        for (int i = 0; i < 6; i++)
        {
            var r = i == 3 ? Raw("none", inputs, id: $"s{i}") : Raw("multi", inputs, id: $"s{i}");
            await call.RequestStream.WriteAsync(r);
        }
        await call.RequestStream.CompleteAsync();
        var answers = new List<ModelStreamInferResponse>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None)) answers.Add(call.ResponseStream.Current);
        Assert.Equal(["s0", "s1", "s2", "s3", "s4", "s5"], answers.Select(a => a.InferResponse.Id));
        Assert.Contains("none", answers[3].ErrorMessage);
        Assert.All(answers.Where((_, i) => i != 3), a =>
        {
            Assert.Equal("", a.ErrorMessage);
            Assert.Equal(3, a.InferResponse.Outputs.Count);
        });
    }

    private async Task<Inference.ModelStatistics> Stats(string model) =>
        (await Client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = model })).ModelStats.Single();

    [Fact]
    public async Task Statistics_add_up_and_batches_count_fewer_executions_than_inferences()
    {
        var inputs = Reference("strings.ref").Where(t => t.Role == "in").ToArray();
        var before = await Stats("strings");
        for (int i = 0; i < 5; i++) await Client.ModelInferAsync(Raw("strings", inputs));
        await Assert.ThrowsAsync<RpcException>(() => Client.ModelInferAsync(Raw("strings", [inputs[0] with { Shape = [1, 2] }])).ResponseAsync);
        var after = await Stats("strings");
        Assert.Equal(5UL, after.InferenceStats.Success.Count - before.InferenceStats.Success.Count);
        Assert.True(after.InferenceStats.Success.Ns > before.InferenceStats.Success.Ns);
        Assert.True(after.LastInference > 1_700_000_000_000UL);

        var one = new RefTensor("in", "input", "FP32", [1, 16], Enumerable.Range(1, 16).Select(i => i.ToString()).ToArray());
        Inference.ModelStatistics stats = null!;
        for (int round = 0; round < 20; round++)
        {
            await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => Client.ModelInferAsync(Raw("mlp", [one])).ResponseAsync));
            stats = await Stats("mlp");
            if (stats.ExecutionCount < stats.InferenceCount) break;
        }
        Assert.True(stats.ExecutionCount < stats.InferenceCount, stats.ToString());
        Assert.Contains(stats.BatchStats, b => b.BatchSize > 1);
        // The same numbers as the REST statistics route.
        using var rest = JsonDocument.Parse(await _server.Process.Client.GetStringAsync("/v2/models/strings/stats"));
        var restStrings = rest.RootElement.GetProperty("model_stats")[0];
        Assert.Equal((long)after.InferenceCount, restStrings.GetProperty("inference_count").GetInt64());
        Assert.Equal(4, (await Client.ModelStatisticsAsync(new ModelStatisticsRequest())).ModelStats.Count);
    }
}

/// <summary>The repository RPCs: index, unload, load, under the same admin rule as the REST routes.</summary>
public sealed class GrpcRepositoryTests
{
    [Fact]
    public async Task Index_unload_and_load_work_and_need_the_admin_token_when_one_is_set()
    {
        var root = Directory.CreateTempSubdirectory("mlos-grpc-repo-").FullName;
        try
        {
            File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(root, "mlp.onnx"));
            using var server = new ServerProcess(root, "--model", "mlp=mlp.onnx", "--admin-token", "grpc-secret-1");
            using var channel = server.Grpc();
            var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
            var index = await client.RepositoryIndexAsync(new RepositoryIndexRequest());
            Assert.Equal("READY", index.Models.Single(m => m.Name == "mlp").State);

            var noToken = await Assert.ThrowsAsync<RpcException>(() => client.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest { ModelName = "mlp" }).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, noToken.StatusCode);
            var wrong = new Metadata { { "authorization", "Bearer not-the-token" } };
            Assert.Equal(StatusCode.PermissionDenied, (await Assert.ThrowsAsync<RpcException>(() =>
                client.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest { ModelName = "mlp" }, wrong).ResponseAsync)).StatusCode);

            var admin = new Metadata { { "authorization", "Bearer grpc-secret-1" } };
            await client.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest { ModelName = "mlp" }, admin);
            Assert.False((await client.ModelReadyAsync(new ModelReadyRequest { Name = "mlp" })).Ready);
            Assert.Empty((await client.RepositoryIndexAsync(new RepositoryIndexRequest { Ready = true })).Models);
            var request = new ModelInferRequest { ModelName = "mlp" };
            var input = new InferInputTensor { Name = "input", Datatype = "FP32" };
            input.Shape.AddRange([1, 16]);
            request.Inputs.Add(input);
            request.RawInputContents.Add(ByteString.CopyFrom(new byte[64]));
            Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(request).ResponseAsync)).StatusCode);

            await client.RepositoryModelLoadAsync(new RepositoryModelLoadRequest { ModelName = "mlp" }, admin);
            Assert.True((await client.ModelReadyAsync(new ModelReadyRequest { Name = "mlp" })).Ready);
            Assert.Single((await client.ModelInferAsync(request)).Outputs);

            var parameters = new RepositoryModelLoadRequest { ModelName = "mlp" };
            parameters.Parameters.Add("config", new ModelRepositoryParameter { StringParam = "{}" });
            Assert.Equal(StatusCode.Unimplemented, (await Assert.ThrowsAsync<RpcException>(() => client.RepositoryModelLoadAsync(parameters, admin).ResponseAsync)).StatusCode);
            Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() =>
                client.RepositoryModelUnloadAsync(new RepositoryModelUnloadRequest { ModelName = "none" }, admin).ResponseAsync)).StatusCode);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task No_grpc_means_no_grpc_port_and_a_taken_grpc_port_stops_the_start()
    {
        var root = Directory.CreateTempSubdirectory("mlos-grpc-off-").FullName;
        try
        {
            using (var server = new ServerProcess(root, "--no-grpc"))
            {
                using var channel = server.Grpc();
                var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
                var e = await Assert.ThrowsAsync<RpcException>(() => client.ServerLiveAsync(new ServerLiveRequest()).ResponseAsync);
                Assert.Equal(StatusCode.Unavailable, e.StatusCode);
            }
            // -g, the original MLOS Core's short form, says the port as --grpc-port does (the later one wins).
            using (var pick = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0))
            {
                pick.Start();
                int grpcPort = ((IPEndPoint)pick.LocalEndpoint).Port;
                pick.Stop();
                using var server = new ServerProcess(root, "-g", grpcPort.ToString());
                using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress($"http://127.0.0.1:{grpcPort}");
                Assert.True((await new GRPCInferenceService.GRPCInferenceServiceClient(channel).ServerLiveAsync(new ServerLiveRequest())).Live);
            }
            using var taken = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
            taken.Start();
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            using var free = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
            free.Start();
            int http = ((IPEndPoint)free.LocalEndpoint).Port;
            free.Stop();
            var info = new System.Diagnostics.ProcessStartInfo(BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core")),
                ["--http-port", http.ToString(), "--grpc-port", port.ToString()]) { RedirectStandardError = true, RedirectStandardOutput = true };
            using var p = System.Diagnostics.Process.Start(info)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var error = await p.StandardError.ReadToEndAsync();
            Assert.True(p.WaitForExit(30000));
            Assert.Equal(1, p.ExitCode);
            Assert.Contains($"{port}", error);
            Assert.Contains("already in use", error);
            Assert.DoesNotContain("   at ", error + await stdout);
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}

/// <summary>ModelStreamInfer with requests in flight together: answered in order, merged by the batcher.</summary>
public sealed class GrpcStreamTests : IClassFixture<GrpcStreamTests.Server>
{
    public sealed class Server() : GrpcServer([("mlp", "mlp.onnx")]);

    private readonly Server _server;
    private GRPCInferenceService.GRPCInferenceServiceClient Client => _server.Client;

    public GrpcStreamTests(Server server) => _server = server;

    /// <summary>One row of the MLP, 1 to 16, as typed contents.</summary>
    private static ModelInferRequest Request(string id)
    {
        var r = new ModelInferRequest { ModelName = "mlp-waits", Id = id };
        var t = new InferInputTensor { Name = "input", Datatype = "FP32" };
        t.Shape.AddRange([1, 16]);
        t.Contents = new InferTensorContents { Fp32Contents = { Enumerable.Range(1, 16).Select(i => (float)i) } };
        r.Inputs.Add(t);
        return r;
    }

    [Fact]
    public async Task A_stream_runs_its_requests_side_by_side_and_answers_them_in_order()
    {
        // A batcher that waits up to 50 ms for company: requests handled one at a time each wait alone.
        using (var reg = await _server.Process.Client.PostAsync("/models/register", new StringContent(
            """{"model_id":"mlp-waits","path":"mlp.onnx","dynamic_batching":{"max_batch_size":64,"max_queue_delay_us":50000}}""",
            System.Text.Encoding.UTF8, "application/json")))
            Assert.True(reg.IsSuccessStatusCode, await reg.Content.ReadAsStringAsync());
        using var call = Client.ModelStreamInfer();
        const int n = 48;
        for (int i = 0; i < n; i++) await call.RequestStream.WriteAsync(Request($"p{i}"));
        await call.RequestStream.CompleteAsync();
        var answers = new List<ModelStreamInferResponse>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None)) answers.Add(call.ResponseStream.Current);
        Assert.Equal(Enumerable.Range(0, n).Select(i => $"p{i}"), answers.Select(a => a.InferResponse.Id));
        Assert.All(answers, a => Assert.Equal("", a.ErrorMessage));
        Assert.Single(answers.Select(a => a.InferResponse.RawOutputContents[0]).Distinct()); // the same input: the same answer
        // In flight together, the stream's requests were merged by the batcher (one at a time: never).
        Assert.Contains(answers, a => a.InferResponse.Parameters["batch_size"].Int64Param > 1);
    }
}
