using Grpc.Core;
using Mlos.Server.Grpc.ModelMesh;
using Mlos.Server.Grpc.Protocol;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// ModelMesh's model-runtime SPI (<c>mmesh.ModelRuntime</c>, <c>--modelmesh</c>), driven by a gRPC
/// client that plays ModelMesh's part against the published server: status at start, size
/// predictions, loads of several models (a file, a folder of ours, a Triton folder) as its puller
/// lays them out, sizes, inference routed by the <c>mm-model-id</c> header, unloads and the purge.
/// </summary>
public sealed class ModelMeshRuntimeTests : IClassFixture<ModelMeshRuntimeTests.Server>
{
    /// <summary>A model root laid out as ModelMesh's puller writes it (one entry per model id), and a model registered by other means.</summary>
    public sealed class Server : IDisposable
    {
        public Server()
        {
            Root = Directory.CreateTempSubdirectory("mlos-mmesh-").FullName;
            var onnx = BuildTree.Models("onnx");
            // A single file, a folder of ours, a folder in Triton's layout.
            File.Copy(Path.Combine(onnx, "mlp.onnx"), Path.Combine(Root, "mlp-file.onnx"));
            Directory.CreateDirectory(Path.Combine(Root, "multi-folder"));
            File.Copy(Path.Combine(onnx, "multi_io.onnx"), Path.Combine(Root, "multi-folder", "model.onnx"));
            Directory.CreateDirectory(Path.Combine(Root, "triton-folder", "1"));
            File.Copy(Path.Combine(onnx, "mlp.onnx"), Path.Combine(Root, "triton-folder", "1", "model.onnx"));
            File.WriteAllText(Path.Combine(Root, "triton-folder", "config.pbtxt"), "platform: \"onnxruntime_onnx\"\nmax_batch_size: 8\n");
            File.Copy(Path.Combine(onnx, "mlp.onnx"), Path.Combine(Root, "static.onnx"));
            File.WriteAllText(Path.Combine(Root, "corrupt.onnx"), "not an ONNX model");
            Process = new ServerProcess(Root, "--modelmesh", "--modelmesh-capacity-mb", "512", "--model", "static=static.onnx");
            Channel = Process.Grpc();
            Runtime = new ModelRuntime.ModelRuntimeClient(Channel);
            Inference = new GRPCInferenceService.GRPCInferenceServiceClient(Channel);
        }

        public string Root { get; }
        public ServerProcess Process { get; }
        public global::Grpc.Net.Client.GrpcChannel Channel { get; }
        public ModelRuntime.ModelRuntimeClient Runtime { get; }
        public GRPCInferenceService.GRPCInferenceServiceClient Inference { get; }

        public void Dispose()
        {
            Channel.Dispose();
            Process.Dispose();
            Directory.Delete(Root, recursive: true);
        }
    }

    private readonly Server _server;
    private ModelRuntime.ModelRuntimeClient Runtime => _server.Runtime;
    private GRPCInferenceService.GRPCInferenceServiceClient Inference => _server.Inference;

    public ModelMeshRuntimeTests(Server server) => _server = server;

    private static Metadata For(string id) => new() { { "mm-model-id", id } };

    private Task<LoadModelResponse> Load(string id, string path, string type = "onnx") =>
        Runtime.loadModelAsync(new LoadModelRequest { ModelId = id, ModelType = type, ModelPath = Path.Combine(_server.Root, path), ModelKey = "{\"model_type\":{\"name\":\"" + type + "\"}}" }).ResponseAsync;

    private static ModelInferRequest MlpRequest(string name) => GrpcRequests.Raw(name, RefTensor.Read("mlp.ref").Where(t => t.Role == "in"));

    private static void AssertMlpAnswer(ModelInferResponse answer)
    {
        var expected = RefTensor.Read("mlp.ref").Single(t => t.Role == "out");
        Assert.True(GrpcRequests.MaxDifference(expected.Bytes(), GrpcRequests.Outputs(answer)[expected.Name]) <= GrpcRequests.Tolerance);
    }

    private async Task<bool> Ready(string id) =>
        (await Inference.ModelReadyAsync(new ModelReadyRequest { Name = "ignored" }, For(id))).Ready;

    [Fact]
    public async Task Runtime_status_is_ready_with_capacity_and_the_forwarded_methods()
    {
        var status = await Runtime.runtimeStatusAsync(new RuntimeStatusRequest());
        Assert.Equal(RuntimeStatusResponse.Types.Status.Ready, status.Status);
        Assert.Equal(512UL << 20, status.CapacityInBytes);
        Assert.True(status.MaxLoadingConcurrency >= 1);
        Assert.True(status.ModelLoadingTimeoutMs >= 10_000);
        Assert.True(status.DefaultModelSizeInBytes > 0);
        Assert.Matches(@"^\d+\.\d+\.\d+", status.RuntimeVersion);
        foreach (var method in new[] { "ModelInfer", "ModelMetadata", "ModelReady" })
            Assert.Equal([1u], status.MethodInfos[$"inference.GRPCInferenceService/{method}"].IdInjectionPath);
    }

    [Fact]
    public async Task Several_models_load_report_their_sizes_serve_by_header_and_unload()
    {
        var loads = await Task.WhenAll(Load("mm-file", "mlp-file.onnx"), Load("mm-folder", "multi-folder"), Load("mm-triton", "triton-folder"));
        long mlpBytes = new FileInfo(Path.Combine(_server.Root, "mlp-file.onnx")).Length;
        // At least what is on disk (the estimate adds working memory), and what modelSize says later.
        Assert.All(loads, l => Assert.True(l.SizeInBytes >= (ulong)mlpBytes));
        Assert.Equal(loads[0].SizeInBytes, (await Runtime.modelSizeAsync(new ModelSizeRequest { ModelId = "mm-file" })).SizeInBytes);
        Assert.Equal(loads[2].SizeInBytes, (await Runtime.modelSizeAsync(new ModelSizeRequest { ModelId = "mm-triton" })).SizeInBytes);

        // ModelMesh forwards with the id in the header; the request's name holds whatever the client sent.
        var answer = await Inference.ModelInferAsync(MlpRequest("my-predictor"), For("mm-file"));
        Assert.Equal("mm-file", answer.ModelName);
        AssertMlpAnswer(answer);
        AssertMlpAnswer(await Inference.ModelInferAsync(MlpRequest("my-predictor"), For("mm-triton")));
        var meta = await Inference.ModelMetadataAsync(new ModelMetadataRequest { Name = "my-predictor" }, For("mm-folder"));
        Assert.Equal("mm-folder", meta.Name);
        Assert.True(meta.Inputs.Count > 1); // multi_io's inputs, not mlp's
        Assert.True(await Ready("mm-triton"));

        await Runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "mm-file" });
        Assert.False(await Ready("mm-file"));
        var gone = await Assert.ThrowsAsync<RpcException>(() => Runtime.modelSizeAsync(new ModelSizeRequest { ModelId = "mm-file" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        var infer = await Assert.ThrowsAsync<RpcException>(() => Inference.ModelInferAsync(MlpRequest("x"), For("mm-file")).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, infer.StatusCode);
        // Unloading again, or a model never loaded, succeeds at once.
        await Runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "mm-file" });
        await Runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "never-loaded" });
        // Loading what is loaded (ModelMesh retrying) answers the same size.
        Assert.Equal(loads[1].SizeInBytes, (await Load("mm-folder", "multi-folder")).SizeInBytes);
        await Runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "mm-folder" });
        await Runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "mm-triton" });
        Assert.False(await Ready("mm-triton"));
    }

    [Fact]
    public async Task Runtime_status_purges_what_ModelMesh_placed_and_nothing_else()
    {
        await Load("mm-purge-1", "mlp-file.onnx");
        await Load("mm-purge-2", "multi-folder");
        Assert.True(await Ready("mm-purge-1"));
        Assert.Equal(RuntimeStatusResponse.Types.Status.Ready, (await Runtime.runtimeStatusAsync(new RuntimeStatusRequest())).Status);
        Assert.False(await Ready("mm-purge-1"));
        Assert.False(await Ready("mm-purge-2"));
        Assert.True(await Ready("static")); // registered by --model: not ModelMesh's
    }

    [Fact]
    public async Task Predicted_sizes_come_from_the_model_key_then_the_files_then_the_default()
    {
        var fromKey = await Runtime.predictModelSizeAsync(new PredictModelSizeRequest { ModelId = "p", ModelKey = "{\"disk_size_bytes\": 80000000}" });
        Assert.Equal(100_000_000UL, fromKey.SizeInBytes);
        long disk = new FileInfo(Path.Combine(_server.Root, "multi-folder", "model.onnx")).Length;
        var fromFiles = await Runtime.predictModelSizeAsync(new PredictModelSizeRequest { ModelId = "p", ModelPath = Path.Combine(_server.Root, "multi-folder") });
        Assert.True(fromFiles.SizeInBytes >= (ulong)disk);
        var unknown = await Runtime.predictModelSizeAsync(new PredictModelSizeRequest { ModelId = "p", ModelPath = "/nowhere/at/all", ModelKey = "not json" });
        var status = await Runtime.runtimeStatusAsync(new RuntimeStatusRequest());
        Assert.Equal(status.DefaultModelSizeInBytes, unknown.SizeInBytes);
    }

    [Fact]
    public async Task Bad_loads_are_refused_with_plain_messages_and_leave_nothing_loaded()
    {
        async Task<RpcException> Refused(LoadModelRequest r) => await Assert.ThrowsAsync<RpcException>(() => Runtime.loadModelAsync(r).ResponseAsync);

        var outside = await Refused(new LoadModelRequest { ModelId = "bad-1", ModelPath = "/etc/passwd" });
        Assert.Equal(StatusCode.InvalidArgument, outside.StatusCode);
        Assert.Contains("outside the model root", outside.Status.Detail);
        var missing = await Refused(new LoadModelRequest { ModelId = "bad-2", ModelPath = Path.Combine(_server.Root, "no-such-model") });
        Assert.Equal(StatusCode.InvalidArgument, missing.StatusCode);
        Assert.Contains("names no file or folder", missing.Status.Detail);
        var noId = await Refused(new LoadModelRequest { ModelPath = Path.Combine(_server.Root, "mlp-file.onnx") });
        Assert.Equal(StatusCode.InvalidArgument, noId.StatusCode);
        var taken = await Refused(new LoadModelRequest { ModelId = "static", ModelPath = Path.Combine(_server.Root, "mlp-file.onnx") });
        Assert.Equal(StatusCode.AlreadyExists, taken.StatusCode);
        foreach (var id in new[] { "bad-1", "bad-2" }) Assert.False(await Ready(id));
        Assert.True(await Ready("static"));
    }

    [Fact]
    public async Task A_routing_header_that_is_not_UTF8_is_the_client_s_mistake_on_unary_and_stream_calls()
    {
        var bad = new Metadata { { "mm-model-id-bin", new byte[] { 0xff, 0xfe, 0x41 } } };
        var e = await Assert.ThrowsAsync<RpcException>(() => Inference.ModelInferAsync(MlpRequest("x"), bad).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Equal("the mm-model-id-bin header is not UTF-8", e.Status.Detail);
        using var stream = Inference.ModelStreamInfer(bad);
        await stream.RequestStream.WriteAsync(MlpRequest("x"));
        await stream.RequestStream.CompleteAsync();
        Assert.True(await stream.ResponseStream.MoveNext(CancellationToken.None));
        Assert.Equal("the mm-model-id-bin header is not UTF-8", stream.ResponseStream.Current.ErrorMessage);
        Assert.False(await stream.ResponseStream.MoveNext(CancellationToken.None));
        // A -bin id that is UTF-8 routes like mm-model-id.
        var good = new Metadata { { "mm-model-id-bin", System.Text.Encoding.UTF8.GetBytes("static") } };
        AssertMlpAnswer(await Inference.ModelInferAsync(MlpRequest("x"), good));
    }

    [Fact]
    public async Task A_failed_load_leaves_nothing_and_its_unload_and_a_good_retry_succeed()
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => Load("mm-corrupt", "corrupt.onnx"));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.DoesNotContain("Exception", e.Status.Detail);
        Assert.False(await Ready("mm-corrupt"));
        await Runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "mm-corrupt" });
        Assert.True((await Load("mm-corrupt", "mlp-file.onnx")).SizeInBytes > 0);
        Assert.True(await Ready("mm-corrupt"));
        await Runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "mm-corrupt" });
    }

    [Fact]
    public async Task A_load_ModelMesh_gave_up_on_is_undone()
    {
        // ModelMesh cancels a load past its deadline and sends the unload at once; the load,
        // still running here, must not leave the model behind when it ends.
        var request = new LoadModelRequest { ModelId = "mm-cancelled", ModelType = "onnx", ModelPath = Path.Combine(_server.Root, "multi-folder") };
        bool loaded = true;
        try { await Runtime.loadModelAsync(request, deadline: DateTime.UtcNow.AddMilliseconds(2)); }
        catch (RpcException e) when (e.StatusCode is StatusCode.DeadlineExceeded or StatusCode.Cancelled) { loaded = false; }
        await Runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "mm-cancelled" });
        if (loaded) return; // it beat the deadline: loaded, then unloaded
        for (int i = 0; i < 50 && await Ready("mm-cancelled"); i++) await Task.Delay(100);
        await Task.Delay(500); // a load still running when the unload came ends by undoing itself
        Assert.False(await Ready("mm-cancelled"));
        var gone = await Assert.ThrowsAsync<RpcException>(() => Runtime.modelSizeAsync(new ModelSizeRequest { ModelId = "mm-cancelled" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public void ModelMesh_with_no_admin_or_a_token_is_refused_at_start()
    {
        foreach (var extra in new[] { "--no-admin", "--admin-token=long-enough-token" })
        {
            var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core")), ["--modelmesh", extra])
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            })!;
            var error = p.StandardError.ReadToEnd();
            Assert.True(p.WaitForExit(30000));
            Assert.Equal(2, p.ExitCode);
            Assert.Contains("--modelmesh cannot be used with", error);
        }
    }

    [Fact]
    public async Task Without_modelmesh_the_SPI_is_not_served_and_the_header_routes_nothing()
    {
        using var plain = new ServerProcess(_server.Root, "--model", "static=static.onnx");
        using var channel = plain.Grpc();
        var e = await Assert.ThrowsAsync<RpcException>(() => new ModelRuntime.ModelRuntimeClient(channel).runtimeStatusAsync(new RuntimeStatusRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unimplemented, e.StatusCode);
        var inference = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.True((await inference.ModelReadyAsync(new ModelReadyRequest { Name = "static" }, For("other"))).Ready);
    }
}
