using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Mlos.Server.Grpc.Protocol;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// A Triton model repository built by tests/models/make_triton_repository.sh from the committed
/// fixtures, served as it is by <c>mlos_core --model-repository</c>: versions and their policies,
/// Triton's PyTorch tensor names, auto-complete, the effective config on REST and gRPC, and the
/// report of fields not acted on.
/// </summary>
public sealed class TritonRepositoryTests : IClassFixture<TritonRepositoryTests.Repository>
{
    public sealed class Repository : IDisposable
    {
        public string Root { get; } = Directory.CreateTempSubdirectory("mlos-triton-").FullName;
        public ServerProcess Server { get; }

        public Repository()
        {
            Build(Root);
            Server = new ServerProcess(Root, "--model-repository", Root);
        }

        public static void Build(string root)
        {
            var script = Path.Combine(Path.GetDirectoryName(BuildTree.Models("onnx"))!, "make_triton_repository.sh");
            using var p = Process.Start(new ProcessStartInfo("bash", [script, root]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var errors = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"{script} failed: {errors}");
        }

        public void Dispose()
        {
            Server.Dispose();
            Directory.Delete(Root, recursive: true);
        }
    }

    private readonly ServerProcess _server;

    public TritonRepositoryTests(Repository repository) => _server = repository.Server;

    private async Task<(HttpStatusCode Code, JsonElement Body)> Get(string path)
    {
        using var r = await _server.Client.GetAsync(path);
        return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static string Row(float[] row) => string.Join(",", row.Select(v => v.ToString("R", CultureInfo.InvariantCulture)));

    private async Task<(HttpStatusCode Code, JsonElement Body)> Infer(string path, string input, float[][] rows)
    {
        var body = $$"""{"inputs":[{"name":"{{input}}","shape":[{{rows.Length}},16],"datatype":"FP32","data":[{{string.Join(",", rows.Select(Row))}}]}]}""";
        using var r = await _server.Client.PostAsync(path, new StringContent(body, Encoding.UTF8, "application/json"));
        return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    /// <summary>A .ref file's first input and first output (rows of 16 and of 4 floats).</summary>
    private static (float[][] In, float[] Out) Reference(string kind)
    {
        var lines = File.ReadAllLines(Path.Combine(BuildTree.Models(kind), "mlp.ref")).Where(l => l.Length > 0 && !l.StartsWith('#')).ToArray();
        float[] Values(string line)
        {
            var p = line.Split(' ');
            int rank = int.Parse(p[3]);
            return p[(4 + rank)..].Select(v => float.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        }
        var input = Values(lines.First(l => l.StartsWith("in ")));
        return (input.Chunk(16).ToArray(), Values(lines.First(l => l.StartsWith("out "))));
    }

    private static void Close(float[] expected, JsonElement output)
    {
        var got = output.GetProperty("data").EnumerateArray().Select(v => v.GetSingle()).ToArray();
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-5, $"value {i}: {got[i]}, expected {expected[i]}");
    }

    [Fact]
    public async Task The_index_lists_each_served_version_and_only_those()
    {
        using var r = await _server.Client.PostAsync("/v2/repository/index", null);
        var entries = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.EnumerateArray()
            .Select(e => $"{e.GetProperty("name").GetString()}:{(e.TryGetProperty("version", out var v) ? v.GetString() : "-")}:{e.GetProperty("state").GetString()}").ToArray();
        // latest {num_versions: 1} serves 2 of 1, 2 (0/, 01/ and notes/ are no versions); all {} serves 3 and 1.
        Assert.Equal(["add_sub:1:READY", "mlp:2:READY", "mlp_all:3:READY", "mlp_all:1:READY", "mlp_bare:1:READY", "mlp_pair:1:READY", "mlp_reshape:1:READY", "mlp_warm:1:READY", "strings_fixed:1:READY", "torch_mlp:1:READY", "torch_reshape:1:READY"], entries);
    }

    [Fact]
    public async Task Versioned_requests_reach_their_version_and_unversioned_ones_the_highest()
    {
        var (rows, expected) = Reference("onnx");
        var (code, answer) = await Infer("/v2/models/mlp_all/versions/1/infer", "input", rows);
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("1", answer.GetProperty("model_version").GetString());
        Close(expected, answer.GetProperty("outputs")[0]);
        (code, answer) = await Infer("/v2/models/mlp_all/infer", "input", rows);
        Assert.Equal("3", answer.GetProperty("model_version").GetString());
        Close(expected, answer.GetProperty("outputs")[0]);
        await Infer("/v2/models/mlp_all/versions/3/infer", "input", rows);

        var (_, stats) = await Get("/v2/models/mlp_all/stats");
        var counts = stats.GetProperty("model_stats").EnumerateArray()
            .ToDictionary(s => s.GetProperty("version").GetString()!, s => s.GetProperty("inference_stats").GetProperty("success").GetProperty("count").GetInt64());
        Assert.Equal(new Dictionary<string, long> { ["1"] = 1, ["3"] = 2 }, counts);

        var (_, metadata) = await Get("/v2/models/mlp_all");
        Assert.Equal(["1", "3"], metadata.GetProperty("versions").EnumerateArray().Select(v => v.GetString()!).ToArray());
        Assert.Equal("3", (await Get("/v2/models/mlp_all/versions/3")).Body.GetProperty("version").GetString());

        // Version 1 of mlp is on disk but not served by its policy.
        (code, answer) = await Infer("/v2/models/mlp/versions/1/infer", "input", rows);
        Assert.Equal(HttpStatusCode.NotFound, code);
        Assert.Equal("model 'mlp' has no version 1 (versions: 2)", answer.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await Get("/v2/models/mlp/versions/1/ready")).Code);
        Assert.Equal(HttpStatusCode.OK, (await Get("/v2/models/mlp/versions/2/ready")).Code);
    }

    [Fact]
    public async Task Max_batch_size_caps_the_rows_of_a_request()
    {
        var (rows, _) = Reference("onnx");
        var eight = Enumerable.Repeat(rows[0], 8).ToArray();
        Assert.Equal(HttpStatusCode.OK, (await Infer("/v2/models/mlp/infer", "input", eight)).Code);
        var (code, answer) = await Infer("/v2/models/mlp/infer", "input", [.. eight, rows[1]]);
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Equal("inference request batch-size must be <= 8 for 'mlp' (input 'input' has 9 rows)", answer.GetProperty("error").GetString());
        // max_batch_size 0 (whole shapes) and no config (auto-complete) set no cap.
        Assert.Equal(HttpStatusCode.OK, (await Infer("/v2/models/mlp_all/infer", "input", Enumerable.Repeat(rows[0], 100).ToArray())).Code);
        Assert.Equal(HttpStatusCode.OK, (await Infer("/v2/models/mlp_bare/infer", "input", Enumerable.Repeat(rows[0], 100).ToArray())).Code);
    }

    [Fact]
    public async Task Grpc_serves_the_versions_the_index_and_the_answers_too()
    {
        var (rows, expected) = Reference("onnx");
        using var channel = _server.Grpc();
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        ModelInferRequest Request(string model, string version)
        {
            var request = new ModelInferRequest { ModelName = model, ModelVersion = version };
            request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { rows.Length, 16 } });
            request.RawInputContents.Add(Google.Protobuf.ByteString.CopyFrom(rows.SelectMany(r => r).SelectMany(BitConverter.GetBytes).ToArray()));
            return request;
        }
        foreach (var (model, version, served) in new[] { ("mlp_all", "1", "1"), ("mlp_all", "", "3"), ("mlp", "2", "2") })
        {
            var reply = await client.ModelInferAsync(Request(model, version));
            Assert.Equal(served, reply.ModelVersion);
            var got = Enumerable.Range(0, expected.Length).Select(i => BitConverter.ToSingle(reply.RawOutputContents[0].Span[(4 * i)..])).ToArray();
            for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-5);
        }
        var missing = await Assert.ThrowsAsync<global::Grpc.Core.RpcException>(async () => await client.ModelInferAsync(Request("mlp", "1")));
        Assert.Equal(global::Grpc.Core.StatusCode.NotFound, missing.StatusCode);
        Assert.Contains("has no version 1 (versions: 2)", missing.Status.Detail);

        var metadata = await client.ModelMetadataAsync(new ModelMetadataRequest { Name = "mlp_all" });
        Assert.Equal(["1", "3"], metadata.Versions);
        var index = await client.RepositoryIndexAsync(new RepositoryIndexRequest());
        Assert.Equal(["3", "1"], index.Models.Where(m => m.Name == "mlp_all").Select(m => m.Version).ToArray());
        var stats = await client.ModelStatisticsAsync(new ModelStatisticsRequest { Name = "mlp_all", Version = "1" });
        Assert.Equal("1", stats.ModelStats.Single().Version);
    }

    [Fact]
    public async Task Torchscript_models_answer_under_the_configs_triton_names()
    {
        var (rows, expected) = Reference("torch");
        var (code, answer) = await Infer("/v2/models/torch_mlp/infer", "INPUT__0", rows);
        Assert.Equal(HttpStatusCode.OK, code);
        var output = answer.GetProperty("outputs")[0];
        Assert.Equal("OUTPUT__0", output.GetProperty("name").GetString());
        Close(expected, output);
        (code, answer) = await Infer("/v2/models/torch_mlp/infer", "input_0", rows);
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("has no input 'input_0' (its inputs: INPUT__0)", answer.GetProperty("error").GetString());

        using var channel = _server.Grpc();
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var request = new ModelInferRequest { ModelName = "torch_mlp" };
        var tensor = new ModelInferRequest.Types.InferInputTensor { Name = "INPUT__0", Datatype = "FP32", Shape = { rows.Length, 16 } };
        tensor.Contents = new InferTensorContents();
        tensor.Contents.Fp32Contents.AddRange(rows.SelectMany(r => r));
        request.Inputs.Add(tensor);
        var reply = await client.ModelInferAsync(request);
        Assert.Equal("OUTPUT__0", reply.Outputs.Single().Name);
        var got = Enumerable.Range(0, expected.Length).Select(i => BitConverter.ToSingle(reply.RawOutputContents[0].Span[(4 * i)..])).ToArray();
        for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-5);
    }

    /// <summary>A request whose one input is the reference rows in the shape given, as JSON.</summary>
    private async Task<(HttpStatusCode Code, JsonElement Body)> InferShaped(string model, string input, float[][] rows, string shape)
    {
        var body = $$"""{"inputs":[{"name":"{{input}}","shape":{{shape}},"datatype":"FP32","data":[{{string.Join(",", rows.Select(Row))}}]}]}""";
        using var r = await _server.Client.PostAsync($"/v2/models/{model}/infer", new StringContent(body, Encoding.UTF8, "application/json"));
        return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static long[] Dims(JsonElement e, string key) => e.GetProperty(key).EnumerateArray().Select(d => d.GetInt64()).ToArray();

    [Theory]
    [InlineData("mlp_reshape", "onnx", "input", "output")]
    [InlineData("torch_reshape", "torch", "INPUT__0", "OUTPUT__0")]
    public async Task Reshaped_tensors_are_served_in_the_configs_dims_and_reach_the_model_in_its_own(string model, string kind, string input, string output)
    {
        var (rows, expected) = Reference(kind);
        var (_, metadata) = await Get($"/v2/models/{model}");
        Assert.Equal([-1L, 4, 4], Dims(metadata.GetProperty("inputs")[0], "shape"));
        Assert.Equal([-1L, 2, 2], Dims(metadata.GetProperty("outputs")[0], "shape"));

        // 8 requests at once: with max_batch_size the batcher merges them, each answer still its own rows.
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => InferShaped(model, input, rows, $"[{rows.Length},4,4]")));
        foreach (var (code, answer) in answers)
        {
            Assert.Equal(HttpStatusCode.OK, code);
            var o = answer.GetProperty("outputs")[0];
            Assert.Equal(output, o.GetProperty("name").GetString());
            Assert.Equal([(long)rows.Length, 2, 2], Dims(o, "shape"));
            Close(expected, o);
        }

        // The model's own shape is not the client's: refused with both named.
        var (refused, error) = await InferShaped(model, input, rows, $"[{rows.Length},16]");
        Assert.Equal(HttpStatusCode.BadRequest, refused);
        Assert.Contains($"input '{input}' has shape [{rows.Length},16]; model '{model}' expects [-1,4,4]", error.GetProperty("error").GetString());
        var (_, config) = await Get($"/v2/models/{model}/config");
        Assert.Equal([16L], Dims(config.GetProperty("input")[0].GetProperty("reshape"), "shape")[^1..]);
    }

    /// <summary>
    /// Triton's Python backend: a model.py with TritonPythonModel, importing
    /// triton_python_backend_utils, serves unchanged on our Python bridge (two instances, each its
    /// own TritonPythonModel), over REST and gRPC; an error response is the request's error.
    /// </summary>
    [Fact]
    public async Task A_python_backend_model_serves_unchanged_on_the_python_bridge()
    {
        string Body(float[] a, float[] b) =>
            $$"""{"inputs":[{"name":"INPUT0","shape":[{{a.Length / 4}},4],"datatype":"FP32","data":[{{Row(a)}}]},{"name":"INPUT1","shape":[{{b.Length / 4}},4],"datatype":"FP32","data":[{{Row(b)}}]}]}""";
        var answers = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            float[] a = [i, 2, 3, 4, 5, 6, 7, 8], b = [1, 1, 1, 1, 2, 2, 2, i];
            using var r = await _server.Client.PostAsync("/v2/models/add_sub/infer", new StringContent(Body(a, b), Encoding.UTF8, "application/json"));
            return (i, a, b, r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
        }));
        foreach (var (i, a, b, code, answer) in answers)
        {
            Assert.True(code == HttpStatusCode.OK, answer.ToString());
            var outputs = answer.GetProperty("outputs");
            Assert.Equal("OUTPUT0", outputs[0].GetProperty("name").GetString());
            Assert.Equal([2L, 4], Dims(outputs[0], "shape"));
            Assert.Equal(a.Zip(b, (x, y) => x + y), outputs[0].GetProperty("data").EnumerateArray().Select(v => v.GetSingle()));
            Assert.Equal(a.Zip(b, (x, y) => x - y), outputs[1].GetProperty("data").EnumerateArray().Select(v => v.GetSingle()));
        }
        using (var bad = await _server.Client.PostAsync("/v2/models/add_sub/infer", new StringContent(Body([1, 2, 3, 4e7f], [1, 1, 1, 1]), Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, bad.StatusCode);
            // The model's message alone: no exception type, no file of the server's.
            Assert.Equal("plugin 'python-bridge' infer on model 'add_sub' failed: SMI_ERROR_RUNTIME (-5): INPUT0 holds a value above 1e6",
                JsonDocument.Parse(await bad.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        }
        var (_, metadata) = await Get("/v2/models/add_sub");
        Assert.Equal(2, metadata.GetProperty("instances").GetInt32());
        Assert.Equal([-1L, 4], Dims(metadata.GetProperty("inputs")[1], "shape"));

        using var channel = _server.Grpc();
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var request = new ModelInferRequest { ModelName = "add_sub" };
        foreach (var name in new[] { "INPUT0", "INPUT1" })
        {
            request.Inputs.Add(new ModelInferRequest.Types.InferInputTensor { Name = name, Datatype = "FP32", Shape = { 1, 4 } });
            request.RawInputContents.Add(Google.Protobuf.ByteString.CopyFrom(new float[] { 1, 2, 3, 4 }.SelectMany(BitConverter.GetBytes).ToArray()));
        }
        var reply = await client.ModelInferAsync(request);
        Assert.Equal(["OUTPUT0", "OUTPUT1"], reply.Outputs.Select(o => o.Name));
        Assert.Equal([2f, 4, 6, 8], Enumerable.Range(0, 4).Select(k => BitConverter.ToSingle(reply.RawOutputContents[0].Span[(4 * k)..])));
        var config = (await client.ModelConfigAsync(new ModelConfigRequest { Name = "add_sub" })).Config;
        Assert.Equal("python", config.Backend);
    }

    /// <summary>Triton's rule: the config's dims are the model's shape, fixing what the model file leaves free.</summary>
    [Fact]
    public async Task Config_dims_fix_the_dimensions_the_model_leaves_free()
    {
        var (_, metadata) = await Get("/v2/models/strings_fixed");
        Assert.Equal([3L], Dims(metadata.GetProperty("inputs")[0], "shape"));
        Assert.Equal([-1L], Dims(metadata.GetProperty("outputs")[0], "shape"));
        async Task<(HttpStatusCode, JsonElement)> Strings(params string[] values)
        {
            var body = $$"""{"inputs":[{"name":"text","shape":[{{values.Length}}],"datatype":"BYTES","data":[{{string.Join(",", values.Select(v => $"\"{v}\""))}}]}]}""";
            using var r = await _server.Client.PostAsync("/v2/models/strings_fixed/infer", new StringContent(body, Encoding.UTF8, "application/json"));
            return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.Clone());
        }
        var (code, answer) = await Strings("a", "bc", "d");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal(["A", "BC", "D"], answer.GetProperty("outputs")[0].GetProperty("data").EnumerateArray().Select(v => v.GetString()!).ToArray());
        (code, answer) = await Strings("a", "b");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Equal("input 'text' has shape [2]; model 'strings_fixed' expects [3] (-1: any)", answer.GetProperty("error").GetString());
    }

    [Fact]
    public async Task The_effective_config_holds_what_the_file_says_and_what_the_model_filled_in()
    {
        var (code, mlp) = await Get("/v2/models/mlp/config");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("onnxruntime_onnx", mlp.GetProperty("platform").GetString());
        Assert.Equal(8, mlp.GetProperty("max_batch_size").GetInt32());
        Assert.Equal(1, mlp.GetProperty("version_policy").GetProperty("latest").GetProperty("num_versions").GetInt32());
        Assert.Equal("TYPE_FP32", mlp.GetProperty("input")[0].GetProperty("data_type").GetString());
        Assert.Equal([16L], mlp.GetProperty("input")[0].GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()).ToArray());
        Assert.Equal(0, mlp.GetProperty("dynamic_batching").GetProperty("max_queue_delay_microseconds").GetInt32());
        // A config that asks for batching gets Triton's: requests merge whatever their size.
        Assert.Equal(0, (await Get("/v2/models/mlp")).Body.GetProperty("dynamic_batching").GetProperty("max_merge_bytes").GetInt64());
        Assert.Equal(1 << 20, (await Get("/v2/models/mlp_bare")).Body.GetProperty("dynamic_batching").GetProperty("max_merge_bytes").GetInt64());

        // No config.pbtxt: everything from the model, batching by the default rule.
        var (_, bare) = await Get("/v2/models/mlp_bare/config");
        Assert.Equal(64, bare.GetProperty("max_batch_size").GetInt32());
        Assert.Equal("input", bare.GetProperty("input")[0].GetProperty("name").GetString());
        Assert.Equal([16L], bare.GetProperty("input")[0].GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()).ToArray());
        Assert.Equal([4L], bare.GetProperty("output")[0].GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()).ToArray());
        Assert.Equal("model.onnx", bare.GetProperty("default_model_filename").GetString());

        var (_, all) = await Get("/v2/models/mlp_all/versions/1/config");
        Assert.Equal(JsonValueKind.Object, all.GetProperty("version_policy").GetProperty("all").ValueKind);
        Assert.Equal(0, all.GetProperty("max_batch_size").GetInt32());
        Assert.False(all.TryGetProperty("dynamic_batching", out _));
        Assert.Equal("1", all.GetProperty("parameters").GetProperty("intra_op_thread_count").GetProperty("string_value").GetString());
        Assert.Equal([-1L, 16], all.GetProperty("input")[0].GetProperty("dims").EnumerateArray().Select(d => d.GetInt64()).ToArray());

        var (_, pair) = await Get("/v2/models/mlp_pair/config");
        Assert.Equal([4], pair.GetProperty("dynamic_batching").GetProperty("preferred_batch_size").EnumerateArray().Select(d => d.GetInt32()).ToArray());
        Assert.Equal(50000, pair.GetProperty("dynamic_batching").GetProperty("max_queue_delay_microseconds").GetInt32());
        Assert.Equal("KIND_CPU", pair.GetProperty("instance_group")[0].GetProperty("kind").GetString());
        Assert.Equal(2, pair.GetProperty("instance_group")[0].GetProperty("count").GetInt32());
        Assert.Equal(2, (await Get("/v2/models/mlp_pair")).Body.GetProperty("instances").GetInt32()); // two sessions of the model
        Assert.Equal(1, (await Get("/v2/models/mlp")).Body.GetProperty("instances").GetInt32());

        var (_, warm) = await Get("/v2/models/mlp_warm/config");
        var samples = warm.GetProperty("model_warmup");
        Assert.Equal("zeros", samples[0].GetProperty("name").GetString());
        Assert.True(samples[0].GetProperty("inputs").GetProperty("input").GetProperty("zero_data").GetBoolean());
        Assert.Equal("ones", samples[1].GetProperty("inputs").GetProperty("input").GetProperty("input_data_file").GetString());

        using var channel = _server.Grpc();
        var client = new GRPCInferenceService.GRPCInferenceServiceClient(channel);
        var config = (await client.ModelConfigAsync(new ModelConfigRequest { Name = "torch_mlp" })).Config;
        Assert.Equal("pytorch_libtorch", config.Platform);
        Assert.Equal(8, config.MaxBatchSize);
        Assert.Equal("INPUT__0", config.Input.Single().Name);
        Assert.Equal(DataType.TypeFp32, config.Input[0].DataType);
        Assert.Equal([16L], config.Input[0].Dims);
        Assert.Equal([4L], config.Output.Single().Dims);
    }

    [Fact]
    public async Task Warm_up_samples_ran_before_the_model_was_ready()
    {
        // "zeros" once with 4 rows, "ones from a file" twice with 1: three runs, six rows.
        var (_, stats) = await Get("/v2/models/mlp_warm/stats");
        var s = stats.GetProperty("model_stats")[0];
        Assert.Equal(3, s.GetProperty("execution_count").GetInt64());
        Assert.Equal(3, s.GetProperty("inference_stats").GetProperty("success").GetProperty("count").GetInt64());
    }

    [Fact]
    public void Fields_not_acted_on_are_reported_once_at_load()
    {
        var lines = _server.OutputOnce("model 'mlp_all': config.pbtxt fields not acted on").Split('\n').Where(l => l.Contains("fields not acted on")).ToArray();
        Assert.Single(lines, l => l.Contains("model 'mlp_all'") && l.Contains("response_cache, input[0].format"));
        Assert.DoesNotContain(lines, l => l.Contains("model 'mlp'"));
    }
}

/// <summary>Triton-layout folders that must not load, each refused with the file and the reason.</summary>
public class TritonRepositoryErrorTests
{
    /// <summary>
    /// The Python bridge serves one class: registered first for another (the guide's sample
    /// class), it is not taken over by a Triton Python model, which is refused naming that class.
    /// </summary>
    [Fact]
    public async Task A_python_model_is_refused_while_the_bridge_serves_another_class()
    {
        var root = Directory.CreateTempSubdirectory("mlos-triton-py-").FullName;
        var plugins = Directory.CreateTempSubdirectory("mlos-triton-py-plugins-").FullName;
        try
        {
            TritonRepositoryTests.Repository.Build(root);
            var python = Directory.CreateDirectory(Path.Combine(plugins, "python")).FullName;
            foreach (var file in Directory.EnumerateFiles(Path.Combine(BuildTree.Repo, "c-tests", "python"), "*.py"))
                File.Copy(file, Path.Combine(python, Path.GetFileName(file)));
            using var server = new ServerProcess(root, "--model-repository", root, "--model-control-mode", "explicit", "--plugin-dir", plugins);
            var bridge = JsonSerializer.Serialize("file://" + Path.Combine(BuildTree.PluginDir, "libmlos_python_plugin.so"));
            using (var registered = await server.Client.PostAsync("/plugins/register", new StringContent(
                       $$$"""{"endpoint":{{{bridge}}},"config":{"module":"my_python_plugin","class":"MyPythonPlugin","path":{{{JsonSerializer.Serialize(python)}}}}}""", Encoding.UTF8, "application/json")))
                Assert.Equal(HttpStatusCode.OK, registered.StatusCode);
            using var load = await server.Client.PostAsync("/v2/repository/models/add_sub/load", Admin.Empty);
            Assert.Equal(HttpStatusCode.Conflict, load.StatusCode);
            Assert.Contains("backend \"python\" needs the Python bridge serving Triton's Python models, but plugin 'python-bridge' is registered for 'My Python ML Plugin'",
                JsonDocument.Parse(await load.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
        }
        finally
        {
            Directory.Delete(root, recursive: true);
            Directory.Delete(plugins, recursive: true);
        }
    }

    [Fact]
    public async Task Bad_folders_fail_their_own_load_with_the_reason_and_the_rest_serve()
    {
        var root = Directory.CreateTempSubdirectory("mlos-triton-bad-").FullName;
        var mlp = Path.Combine(BuildTree.Models("onnx"), "mlp.onnx");
        void Model(string name, string? config, params string[] versions)
        {
            foreach (var v in versions)
            {
                Directory.CreateDirectory(Path.Combine(root, name, v));
                File.Copy(mlp, Path.Combine(root, name, v, "model.onnx"));
            }
            Directory.CreateDirectory(Path.Combine(root, name));
            if (config is not null) File.WriteAllText(Path.Combine(root, name, "config.pbtxt"), config);
        }
        Model("good", "max_batch_size: 4", "1");
        Model("renamed", "name: \"other\"", "1");
        Model("syntax", "max_batch_size: 4\ninput { name: \"input\" data_type: TYPE_FP32 dims: [16 }", "1");
        Model("wrong_input", "input [{ name: \"pixels\" data_type: TYPE_FP32 dims: [-1, 16] }]", "1");
        Model("wrong_dtype", "input [{ name: \"input\" data_type: TYPE_INT64 dims: [-1, 16] }]", "1");
        Model("wrong_dims", "max_batch_size: 4 input [{ name: \"input\" data_type: TYPE_FP32 dims: [15] }]", "1");
        Model("no_version", "version_policy { specific { versions: [7] } }", "1", "2");
        Model("tensorflow", "platform: \"tensorflow_graphdef\"", "1");
        Model("warm_bad", """
            max_batch_size: 8
            model_warmup { name: "short file" inputs { key: "input" value: { data_type: TYPE_FP32 dims: [16] input_data_file: "short" } } }
            """, "1");
        Directory.CreateDirectory(Path.Combine(root, "warm_bad", "warmup"));
        File.WriteAllBytes(Path.Combine(root, "warm_bad", "warmup", "short"), new byte[12]);
        Model("warm_wrong", """
            max_batch_size: 8
            model_warmup { name: "misnamed" batch_size: 2 inputs { key: "pixels" value: { data_type: TYPE_FP32 dims: [16] zero_data: true } } }
            """, "1");
        Model("py_env", """
            backend: "python"
            parameters { key: "EXECUTION_ENV_PATH" value: { string_value: "$$TRITON_MODEL_DIRECTORY/env.tar.gz" } }
            """, "1");
        Model("py_text", """
            backend: "python"
            input [{ name: "text" data_type: TYPE_STRING dims: [1] }]
            """, "1");
        Model("both", null, "1");
        File.WriteAllText(Path.Combine(root, "both", "config.json"), "{}");
        File.WriteAllText(Path.Combine(root, "both", "config.pbtxt"), "");
        try
        {
            using var server = new ServerProcess(root, "--model-repository", root, "--model-control-mode", "explicit", "--load-model", "*");
            async Task<(HttpStatusCode, string)> Load(string name)
            {
                using var r = await server.Client.PostAsync($"/v2/repository/models/{name}/load", Admin.Empty);
                return (r.StatusCode, JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString()!);
            }
            Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/v2/models/good/ready")).StatusCode);
            foreach (var (name, code, message) in new[]
            {
                ("renamed", HttpStatusCode.BadRequest, "renamed/config.pbtxt names the model 'other', but its folder is 'renamed': they must agree"),
                ("syntax", HttpStatusCode.BadRequest, "syntax/config.pbtxt:2:54: expected ',' or ']' in the list 'dims', found '}'"),
                ("wrong_input", HttpStatusCode.BadRequest, "wrong_input/config.pbtxt declares input 'pixels', which the model does not have (its inputs: input)"),
                ("wrong_dtype", HttpStatusCode.BadRequest, "wrong_dtype/config.pbtxt declares input 'input' as TYPE_INT64; the model's is TYPE_FP32"),
                ("wrong_dims", HttpStatusCode.BadRequest, "wrong_dims/config.pbtxt declares input 'input' as [-1,15] (with the batch dimension); the model's is [-1,16]"),
                ("no_version", HttpStatusCode.NotFound, "repository model 'no_version': its version policy serves none of the versions on disk (1, 2)"),
                ("tensorflow", HttpStatusCode.BadRequest, "tensorflow/config.pbtxt: platform \"tensorflow_graphdef\" is not served here"),
                ("warm_bad", HttpStatusCode.BadRequest, "model 'warm_bad' warm-up sample 'short file' failed: input 'input': warmup/short holds 12 bytes; dims [16] of TYPE_FP32 take 64"),
                ("warm_wrong", HttpStatusCode.BadRequest, "model 'warm_wrong' warm-up sample 'misnamed' failed: model 'warm_wrong' has no input 'pixels' (its inputs: input)"),
                ("both", HttpStatusCode.BadRequest, "repository model 'both' has both config.json and config.pbtxt: keep one of them"),
                ("py_env", HttpStatusCode.BadRequest, "py_env/config.pbtxt: parameters EXECUTION_ENV_PATH (a packed Python environment) is not served"),
                ("py_text", HttpStatusCode.BadRequest, "py_text/config.pbtxt: 'text' is TYPE_STRING, which the Python bridge does not carry"),
            })
            {
                var (got, error) = await Load(name);
                Assert.True(code == got, $"{name}: {got} {error}");
                Assert.Contains(message, error);
                Assert.Contains($"repository model '{name}' not loaded", server.OutputOnce($"repository model '{name}' not loaded")); // the start-up load said so too
                Assert.Equal(HttpStatusCode.NotFound, (await server.Client.GetAsync($"/v2/models/{name}/ready")).StatusCode);
            }
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
