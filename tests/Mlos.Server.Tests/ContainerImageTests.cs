using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Mlos.Server.Grpc.ModelMesh;
using Mlos.Server.Grpc.Protocol;
using Mlos.Tests;
using Xunit.Abstractions;
using static Mlos.Server.Tests.DeployManifests;

namespace Mlos.Server.Tests;

/// <summary>
/// The OCI image (deploy/container/Containerfile) run with podman exactly as the manifests run
/// it: the image, arguments, ports and probe paths of the KServe runtime and of the ModelMesh
/// runtime, a read-only root, a mounted model folder. Needs the image built and a few minutes,
/// so it is not part of ctest (Category=Container): tests/container/run.sh builds the image,
/// runs these and commits what they print to tests/container/RESULTS.md.
/// </summary>
[Trait("Category", "Container")]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ContainerImageTests(ITestOutputHelper output)
{
    private const string KServeRuntime = "kserve/cluster-serving-runtime.yaml", ModelMeshRuntime = "modelmesh/serving-runtime.yaml";

    [Fact]
    public async Task The_image_serves_a_repository_over_REST_and_gRPC_as_KServe_runs_it()
    {
        var c = ContainerOf(Document(KServeRuntime));
        using var repo = new ModelFolder();
        repo.TritonMlp("mlp");
        await using var container = await RunningContainer.Start(output, "mlos-test-kserve", c, $"{repo.Path}:/mnt/models:ro");
        await container.WaitHealthy();

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{c.Arg("--http-port")}") };
        foreach (var probe in c.Probes)
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{c.PortOf(probe)}{probe.Path}")).StatusCode);
        var reference = RefTensor.Read("mlp.ref");
        var input = reference.Single(t => t.Role == "in");
        var expected = reference.Single(t => t.Role == "out");
        var body = $$"""{"inputs":[{"name":"{{input.Name}}","shape":[{{string.Join(",", input.Shape)}}],"datatype":"FP32","data":[{{string.Join(",", input.Values)}}]}]}""";
        var answer = await http.PostAsync("/v2/models/mlp/infer", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        using (var json = JsonDocument.Parse(await answer.Content.ReadAsStringAsync()))
        {
            var got = json.RootElement.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray();
            var want = expected.Values.Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(want.Length, got.Length);
            Assert.All(want.Zip(got), p => Assert.True(Math.Abs(p.First - p.Second) <= GrpcRequests.Tolerance));
        }
        output.WriteLine("REST: KServe v2 JSON inference of mlp matches mlp.ref");

        using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress($"http://127.0.0.1:{c.Arg("--grpc-port")}");
        var grpc = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        Assert.True((await grpc.ServerReadyAsync(new ServerReadyRequest())).Ready);
        var raw = await grpc.ModelInferAsync(GrpcRequests.Raw("mlp", [input]));
        Assert.True(GrpcRequests.MaxDifference(expected.Bytes(), GrpcRequests.Outputs(raw)[expected.Name]) <= GrpcRequests.Tolerance);
        output.WriteLine("gRPC: inference.GRPCInferenceService/ModelInfer of mlp matches mlp.ref");

        Assert.Contains("mlos_queue_duration_seconds_count", await http.GetStringAsync("/metrics"));
        var refused = await http.PostAsync("/v2/repository/models/mlp/unload", null);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode); // --no-admin
        await container.CheckUserAndReadOnlyRoot();
        await container.StopGracefully();
    }

    [Fact]
    public async Task The_image_serves_ModelMesh_s_runtime_SPI_as_ModelMesh_runs_it()
    {
        var c = ContainerOf(Document(ModelMeshRuntime));
        using var models = new ModelFolder();
        models.File("mlp.onnx", "mlp-file.onnx");
        models.TritonMlp("mlp-folder");
        await using var container = await RunningContainer.Start(output, "mlos-test-modelmesh", c, $"{models.Path}:/models:ro");
        await container.WaitHealthy();

        using var channel = global::Grpc.Net.Client.GrpcChannel.ForAddress($"http://127.0.0.1:{c.Arg("--grpc-port")}");
        var runtime = new ModelRuntime.ModelRuntimeClient(channel);
        var status = await runtime.runtimeStatusAsync(new RuntimeStatusRequest());
        Assert.Equal(RuntimeStatusResponse.Types.Status.Ready, status.Status);
        Assert.True(status.CapacityInBytes > 0);
        output.WriteLine($"runtimeStatus: READY, capacity {status.CapacityInBytes >> 20} MiB, {status.MethodInfos.Count} forwarded methods");
        var file = await runtime.loadModelAsync(new LoadModelRequest { ModelId = "mm-file", ModelType = "onnx", ModelPath = "/models/mlp-file.onnx" });
        var folder = await runtime.loadModelAsync(new LoadModelRequest { ModelId = "mm-folder", ModelType = "onnx", ModelPath = "/models/mlp-folder" });
        Assert.Equal(file.SizeInBytes, (await runtime.modelSizeAsync(new ModelSizeRequest { ModelId = "mm-file" })).SizeInBytes);
        output.WriteLine($"loadModel: a file ({file.SizeInBytes} bytes) and a Triton folder ({folder.SizeInBytes} bytes)");

        var reference = RefTensor.Read("mlp.ref");
        var expected = reference.Single(t => t.Role == "out");
        var inference = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        foreach (var id in new[] { "mm-file", "mm-folder" })
        {
            var answer = await inference.ModelInferAsync(GrpcRequests.Raw("predictor", reference.Where(t => t.Role == "in")), new Metadata { { "mm-model-id", id } });
            Assert.Equal(id, answer.ModelName);
            Assert.True(GrpcRequests.MaxDifference(expected.Bytes(), GrpcRequests.Outputs(answer)[expected.Name]) <= GrpcRequests.Tolerance);
        }
        output.WriteLine("inference routed by mm-model-id to each: matches mlp.ref");
        await runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "mm-file" });
        await runtime.unloadModelAsync(new UnloadModelRequest { ModelId = "never-loaded" });
        Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(() => runtime.modelSizeAsync(new ModelSizeRequest { ModelId = "mm-file" }).ResponseAsync)).StatusCode);
        Assert.Equal(RuntimeStatusResponse.Types.Status.Ready, (await runtime.runtimeStatusAsync(new RuntimeStatusRequest())).Status);
        Assert.False((await inference.ModelReadyAsync(new ModelReadyRequest { Name = "x" }, new Metadata { { "mm-model-id", "mm-folder" } })).Ready);
        output.WriteLine("unloadModel (known and unknown), and runtimeStatus's purge: as the SPI documents");
        await container.CheckUserAndReadOnlyRoot();
        await container.StopGracefully();
    }

    /// <summary>A scratch folder the container's user (not root) can read, removed on dispose.</summary>
    private sealed class ModelFolder : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("mlos-container-").FullName;

        public ModelFolder() => Readable(Path);

        public void File(string fixture, string name)
        {
            System.IO.File.Copy(System.IO.Path.Combine(BuildTree.Models("onnx"), fixture), System.IO.Path.Combine(Path, name));
            Readable(System.IO.Path.Combine(Path, name));
        }

        /// <summary>The MLP fixture in Triton's layout: config.pbtxt and version 1.</summary>
        public void TritonMlp(string name)
        {
            var folder = System.IO.Path.Combine(Path, name);
            Directory.CreateDirectory(System.IO.Path.Combine(folder, "1"));
            System.IO.File.WriteAllText(System.IO.Path.Combine(folder, "config.pbtxt"), "platform: \"onnxruntime_onnx\"\nmax_batch_size: 8\n");
            System.IO.File.Copy(System.IO.Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), System.IO.Path.Combine(folder, "1", "model.onnx"));
            foreach (var p in new[] { folder, System.IO.Path.Combine(folder, "1"), System.IO.Path.Combine(folder, "config.pbtxt"), System.IO.Path.Combine(folder, "1", "model.onnx") })
                Readable(p);
        }

        private static void Readable(string path) => System.IO.File.SetUnixFileMode(path, Directory.Exists(path)
            ? UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute
            : UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }

    /// <summary>One container of the image, on the host's network (design.md §5), removed on dispose.</summary>
    private sealed class RunningContainer : IAsyncDisposable
    {
        private readonly ITestOutputHelper _output;
        private readonly string _name;
        private readonly Stopwatch _since = Stopwatch.StartNew();

        private RunningContainer(ITestOutputHelper output, string name)
        {
            _output = output;
            _name = name;
        }

        public static async Task<RunningContainer> Start(ITestOutputHelper output, string name, Container c, string volume)
        {
            await Podman(["rm", "-f", name], check: false);
            // The root read-only as the Deployment mounts it, /tmp a tmpfs (plugin hosts' sockets);
            // the health check run on demand below (podman's timer needs systemd).
            await Podman(["run", "-d", "--name", name, "--network=host", "--read-only", "--tmpfs", "/tmp", "--health-interval=disable",
                "-e", $"MLOS_HEALTH_PORT={c.Arg("--http-port")}", "-v", volume, c.Image, .. c.Args]);
            output.WriteLine($"podman run {c.Image} {string.Join(' ', c.Args)}");
            return new RunningContainer(output, name);
        }

        /// <summary>Until the image's HEALTHCHECK (/v2/health/ready) passes, at most a minute.</summary>
        public async Task WaitHealthy()
        {
            while ((await Podman(["healthcheck", "run", _name], check: false)).Code != 0)
            {
                if (_since.Elapsed > TimeSpan.FromMinutes(1)) throw new TimeoutException($"not healthy after a minute: {await Logs()}");
                await Task.Delay(200);
            }
            _output.WriteLine($"healthy (the image's HEALTHCHECK, /v2/health/ready) {_since.Elapsed.TotalSeconds:F1} s after podman run");
        }

        public async Task CheckUserAndReadOnlyRoot()
        {
            Assert.Equal("10001", (await Podman(["exec", _name, "id", "-u"])).Text.Trim());
            Assert.NotEqual(0, (await Podman(["exec", _name, "touch", "/usr/lib/mlos/x"], check: false)).Code);
            _output.WriteLine("runs as uid 10001 on a read-only root");
        }

        /// <summary>SIGTERM (as Kubernetes sends it) ends the server cleanly, well within the pod's grace period.</summary>
        public async Task StopGracefully()
        {
            var stop = Stopwatch.StartNew();
            await Podman(["stop", "-t", "30", _name]);
            var seconds = stop.Elapsed.TotalSeconds;
            Assert.Equal("0", (await Podman(["inspect", _name, "--format", "{{.State.ExitCode}}"])).Text.Trim());
            Assert.True(seconds < 20, $"stopping took {seconds:F1} s");
            var logs = await Logs();
            Assert.DoesNotContain("   at ", logs);
            Assert.DoesNotContain("telemetry", logs, StringComparison.OrdinalIgnoreCase); // ONNX Runtime's, off (OnnxTelemetry)
            _output.WriteLine($"SIGTERM: exit code 0 after {seconds:F1} s");
        }

        private async Task<string> Logs()
        {
            var (_, stdout, stderr) = await Podman(["logs", _name], check: false);
            return stdout + stderr;
        }

        public async ValueTask DisposeAsync() => await Podman(["rm", "-f", _name], check: false);
    }

    /// <summary>podman's exit code, and what it wrote: stdout, then stderr (a container's logs come on both).</summary>
    private static async Task<(int Code, string Text, string Errors)> Podman(string[] args, bool check = true)
    {
        var info = new ProcessStartInfo("podman", args) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = Process.Start(info) ?? throw new InvalidOperationException("podman did not start");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        if (check && p.ExitCode != 0) throw new InvalidOperationException($"podman {string.Join(' ', args)} exited with {p.ExitCode}: {await stdout}{await stderr}");
        return (p.ExitCode, await stdout, await stderr);
    }
}
