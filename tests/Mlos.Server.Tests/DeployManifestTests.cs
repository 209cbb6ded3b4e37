using System.Net;
using System.Text;
using Grpc.Core;
using Mlos.Server.Grpc.ModelMesh;
using Mlos.Tests;
using YamlDotNet.RepresentationModel;
using static Mlos.Server.Tests.DeployManifests;

namespace Mlos.Server.Tests;

/// <summary>
/// The deploy/ manifests, read with a real YAML parser: each says what KServe, ModelMesh and
/// Kubernetes need, they agree with each other, and every container's arguments start the
/// published server, whose routes answer the probes they name. tests/container/run.sh runs the
/// image with the same arguments.
/// </summary>
public sealed class DeployManifestTests
{
    private const string KServeRuntime = "kserve/cluster-serving-runtime.yaml", ModelMeshRuntime = "modelmesh/serving-runtime.yaml",
        Deployment = "kubernetes/deployment.yaml";

    private static string Version => File.ReadAllText(Path.Combine(BuildTree.Repo, "VERSION")).Trim();

    [Fact]
    public void Every_manifest_parses_and_says_what_it_is()
    {
        var kinds = All().Where(d => !d.File.EndsWith("-values.yaml", StringComparison.Ordinal)).Select(d =>
        {
            Assert.False(string.IsNullOrEmpty(d.Root.Text("apiVersion")), $"{d.File}: no apiVersion");
            if (d.Root.Text("kind") != "Kustomization") Assert.False(string.IsNullOrEmpty(d.Root.Text("metadata", "name")), $"{d.File}: no metadata.name");
            return $"{d.File}: {d.Root.Text("kind")}";
        }).ToList();
        Assert.Equal([
            "kserve/cluster-serving-runtime.yaml: ClusterServingRuntime", "kserve/inference-service.yaml: InferenceService",
            "kubernetes/deployment.yaml: Deployment", "kubernetes/hpa.yaml: HorizontalPodAutoscaler", "kubernetes/kustomization.yaml: Kustomization",
            "kubernetes/service.yaml: Service", "modelmesh/serving-runtime.yaml: ServingRuntime"], kinds);
    }

    [Fact]
    public void The_KServe_runtime_declares_formats_protocols_ports_probes_and_metrics()
    {
        var doc = Document(KServeRuntime);
        Assert.Equal("serving.kserve.io/v1alpha1", doc.Text("apiVersion"));
        var formats = doc.Items("spec", "supportedModelFormats");
        Assert.Equal(["onnx", "pytorch"], formats.Select(f => f.Text("name")));
        Assert.All(formats, f => Assert.Equal("true", f.Text("autoSelect")));
        Assert.Equal(["v2", "grpc-v2"], doc.Items("spec", "protocolVersions").Select(p => ((YamlScalarNode)p).Value));
        var c = ContainerOf(doc);
        Assert.Equal("kserve-container", c.Name);
        Assert.Equal($"localhost/mlos-native:{Version}", c.Image);
        Assert.Equal("/mnt/models", c.Arg("--model-repository"));
        Assert.Equal(c.Ports["http1"].ToString(), c.Arg("--http-port"));
        Assert.Equal(c.Ports["h2c"].ToString(), c.Arg("--grpc-port"));
        Assert.Equal(["/v2/health/ready", "/v2/health/live", "/v2/health/live"], c.Probes.Select(p => p.Path));
        Assert.Equal(c.Arg("--http-port"), doc.Text("spec", "annotations", "prometheus.kserve.io/port"));
        Assert.Equal("/metrics", doc.Text("spec", "annotations", "prometheus.kserve.io/path"));
        var container = doc.Items("spec", "containers")[0];
        foreach (var part in new[] { "requests", "limits" })
            foreach (var resource in new[] { "cpu", "memory" })
                Assert.NotNull(container.Text("resources", part, resource));
    }

    [Fact]
    public void The_InferenceService_asks_for_the_runtime_with_a_format_it_serves()
    {
        var isvc = Document("kserve/inference-service.yaml");
        var runtime = Document(KServeRuntime);
        Assert.Equal(runtime.Text("metadata", "name"), isvc.Text("spec", "predictor", "model", "runtime"));
        Assert.Contains(isvc.Text("spec", "predictor", "model", "modelFormat", "name"), runtime.Items("spec", "supportedModelFormats").Select(f => f.Text("name")));
        Assert.Contains(isvc.Text("spec", "predictor", "model", "protocolVersion"), runtime.Items("spec", "protocolVersions").Select(p => ((YamlScalarNode)p).Value));
    }

    [Fact]
    public void The_ModelMesh_runtime_is_multi_model_on_the_port_the_server_serves_its_SPI()
    {
        var doc = Document(ModelMeshRuntime);
        Assert.Equal("true", doc.Text("spec", "multiModel"));
        var c = ContainerOf(doc);
        Assert.Equal($"localhost/mlos-native:{Version}", c.Image);
        Assert.Contains("--modelmesh", c.Args);
        Assert.Null(c.Arg("--host")); // loopback: ModelMesh calls from inside the pod
        Assert.Equal($"port:{c.Arg("--grpc-port")}", doc.Text("spec", "grpcEndpoint"));
        Assert.Equal($"port:{c.Arg("--grpc-port")}", doc.Text("spec", "grpcDataEndpoint"));
        Assert.Equal(["onnx", "pytorch"], doc.Items("spec", "supportedModelFormats").Select(f => f.Text("name")));
        // ModelMesh's own containers in the pod take these (modelmesh-serving refuses a runtime declaring them).
        foreach (var port in new[] { c.Arg("--http-port"), c.Arg("--grpc-port") })
            Assert.DoesNotContain(port, new[] { "8080", "8085", "8089", "8090" });
    }

    [Fact]
    public void Every_pod_runs_as_non_root_under_the_runtime_default_seccomp_profile()
    {
        foreach (var (file, path) in new[] { (KServeRuntime, new[] { "spec", "containers" }), (ModelMeshRuntime, ["spec", "containers"]), (Deployment, ["spec", "template", "spec", "containers"]) })
        {
            var doc = Document(file);
            var container = doc.Items(path)[0];
            var pod = file == Deployment ? doc.Get("spec", "template", "spec", "securityContext") : null;
            Assert.Equal("RuntimeDefault", container.Text("securityContext", "seccompProfile", "type") ?? pod?.Text("seccompProfile", "type"));
            Assert.Equal("true", container.Text("securityContext", "runAsNonRoot") ?? pod?.Text("runAsNonRoot"));
            Assert.Equal("false", container.Text("securityContext", "allowPrivilegeEscalation"));
        }
    }

    [Fact]
    public void The_image_s_default_arguments_are_the_Deployment_s()
    {
        var line = File.ReadLines(Path.Combine(Folder, "container", "Containerfile")).Single(l => l.StartsWith("CMD ", StringComparison.Ordinal));
        var cmd = System.Text.Json.JsonSerializer.Deserialize<string[]>(line["CMD ".Length..])!;
        Assert.Equal(ContainerOf(Document(Deployment)).Args, cmd);
    }

    [Fact]
    public void The_Kubernetes_base_agrees_with_itself_and_the_adapter_rule()
    {
        var kustomization = Document("kubernetes/kustomization.yaml");
        foreach (var r in kustomization.Items("resources"))
            Assert.True(File.Exists(Path.Combine(Folder, "kubernetes", ((YamlScalarNode)r).Value!)), $"kustomization names {r}, which is missing");
        var deployment = Document(Deployment);
        var c = ContainerOf(deployment);
        Assert.Equal($"localhost/mlos-native:{Version}", c.Image);
        var service = Document("kubernetes/service.yaml");
        foreach (var p in service.Items("spec", "ports"))
            Assert.Contains(p.Text("targetPort"), c.Ports.Keys);
        var podLabels = (YamlMappingNode)deployment.Get("spec", "template", "metadata", "labels")!;
        foreach (var (key, value) in (YamlMappingNode)service.Get("spec", "selector")!)
            Assert.Equal(((YamlScalarNode)value).Value, podLabels.Text(((YamlScalarNode)key).Value!));
        var annotations = deployment.Get("spec", "template", "metadata", "annotations")!;
        Assert.Equal(c.Arg("--http-port"), annotations.Text("prometheus.io/port"));
        // The grace period covers the pause before SIGTERM and the server's own shutdown timeout.
        var grace = int.Parse(deployment.Text("spec", "template", "spec", "terminationGracePeriodSeconds")!);
        var pause = int.Parse(((YamlScalarNode)deployment.Items("spec", "template", "spec", "containers")[0].Items("lifecycle", "preStop", "exec", "command").Last()).Value!);
        Assert.True(grace > pause + int.Parse(c.Arg("--shutdown-timeout-s")!), $"grace {grace} s, pause {pause} s, shutdown timeout {c.Arg("--shutdown-timeout-s")} s");
        var hpa = Document("kubernetes/hpa.yaml");
        Assert.Equal(deployment.Text("metadata", "name"), hpa.Text("spec", "scaleTargetRef", "name"));
        var rule = Assert.Single(Document("kubernetes/prometheus-adapter-values.yaml").Items("rules", "custom"));
        Assert.Equal(rule.Text("name", "as"), hpa.Items("spec", "metrics")[0].Text("pods", "metric", "name"));
        Assert.Contains(AdapterSeries, rule.Text("seriesQuery"));
        Assert.Contains("mlos_queue_duration_seconds_sum", rule.Text("metricsQuery"));
    }

    /// <summary>The series the HPA's rule reads; the server must export it (checked by running the Deployment's arguments).</summary>
    private const string AdapterSeries = "mlos_queue_duration_seconds_count";

    public static TheoryData<string> ContainerFiles => new() { KServeRuntime, ModelMeshRuntime, Deployment };

    /// <summary>
    /// The container's arguments, as they are but for the ports (each server gets free ones) and
    /// the model folders (a scratch repository in place of /mnt/models and /models), start the
    /// server; every probe path answers 200 on the HTTP port; the demo model serves.
    /// </summary>
    [Theory]
    [MemberData(nameof(ContainerFiles))]
    public async Task Every_container_s_arguments_start_the_server_and_its_probe_paths_answer(string file)
    {
        var c = ContainerOf(Document(file));
        var repo = Directory.CreateTempSubdirectory("mlos-deploy-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(repo, "mlp", "1"));
            File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(repo, "mlp", "1", "model.onnx"));
            File.WriteAllText(Path.Combine(repo, "mlp", "config.pbtxt"), "platform: \"onnxruntime_onnx\"\nmax_batch_size: 8\n");
            var args = c.Args.Where(a => !a.StartsWith("--http-port=", StringComparison.Ordinal) && !a.StartsWith("--grpc-port=", StringComparison.Ordinal))
                .Select(a => a.Replace("=/mnt/models", "=" + repo).Replace("=/models", "=" + repo)).ToArray();
            using var server = new ServerProcess(repo, args);
            foreach (var probe in c.Probes)
            {
                Assert.Equal(c.Arg("--http-port"), c.PortOf(probe).ToString());
                Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync(probe.Path)).StatusCode);
            }
            if (c.Args.Contains("--modelmesh"))
            {
                using var channel = server.Grpc();
                var runtime = new ModelRuntime.ModelRuntimeClient(channel);
                Assert.Equal(RuntimeStatusResponse.Types.Status.Ready, (await runtime.runtimeStatusAsync(new RuntimeStatusRequest())).Status);
                var load = await runtime.loadModelAsync(new LoadModelRequest { ModelId = "mm-mlp", ModelType = "onnx", ModelPath = Path.Combine(repo, "mlp") });
                Assert.True(load.SizeInBytes > 0);
                var inference = new Grpc.Protocol.GRPCInferenceService.GRPCInferenceServiceClient(channel);
                Assert.True((await inference.ModelReadyAsync(new Grpc.Protocol.ModelReadyRequest { Name = "x" }, new Metadata { { "mm-model-id", "mm-mlp" } })).Ready);
                return;
            }
            var input = string.Join(",", Enumerable.Repeat("0.5", 16));
            var infer = await server.Client.PostAsync("/v2/models/mlp/infer",
                new StringContent($$"""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[{{input}}]}]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, infer.StatusCode);
            Assert.Contains(AdapterSeries, await server.Client.GetStringAsync("/metrics"));
        }
        finally { Directory.Delete(repo, recursive: true); }
    }
}
