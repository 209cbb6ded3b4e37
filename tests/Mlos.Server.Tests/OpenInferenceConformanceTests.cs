using System.Net;
using System.Text;
using System.Text.Json;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// Where the v2 REST routes used to depart from the Open Inference Protocol in ways clients
/// notice (issue #14): requested outputs, error bodies, metadata, versions, strict headers, ids.
/// The multi_io fixture has three outputs (logits, ids_sum, mask) to select from.
/// </summary>
public sealed class OpenInferenceConformanceTests : IClassFixture<OpenInferenceConformanceTests.Server>, IDisposable
{
    public sealed class Server : IDisposable
    {
        public Server()
        {
            Root = Directory.CreateTempSubdirectory("mlos-oip-").FullName;
            foreach (var f in (string[])["multi_io.onnx", "mlp.onnx"])
                File.Copy(Path.Combine(BuildTree.Models("onnx"), f), Path.Combine(Root, f));
            Process = new ServerProcess(Root, "--model", "multi=multi_io.onnx", "--model", "mlp=mlp.onnx");
        }

        public string Root { get; }
        public ServerProcess Process { get; }

        public void Dispose()
        {
            Process.Dispose();
            Directory.Delete(Root, recursive: true);
        }
    }

    private readonly HttpClient _http;

    public OpenInferenceConformanceTests(Server server) => _http = server.Process.Client;

    public void Dispose() { }

    private const string MultiInputs = """
        "inputs":[{"name":"input_ids","shape":[1,8],"datatype":"INT64","data":[1,2,3,4,5,6,7,8]},
                  {"name":"features","shape":[1,4],"datatype":"FP32","data":[0.5,-1,2,0.25]}]
        """;

    private async Task<(HttpStatusCode Code, JsonElement Body)> Post(string path, string json)
    {
        using var r = await _http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        var text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    private static string[] OutputNames(JsonElement body) =>
        body.GetProperty("outputs").EnumerateArray().Select(o => o.GetProperty("name").GetString()!).ToArray();

    [Fact]
    public async Task Requested_outputs_select_the_outputs_sent()
    {
        var (code, all) = await Post("/v2/models/multi/infer", $"{{{MultiInputs}}}");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal(3, OutputNames(all).Length);
        var (code1, one) = await Post("/v2/models/multi/infer", $$"""{{{MultiInputs}}, "outputs":[{"name":"ids_sum"}]}""");
        Assert.Equal(HttpStatusCode.OK, code1);
        Assert.Equal(["ids_sum"], OutputNames(one));
        Assert.Equal(36, one.GetProperty("outputs")[0].GetProperty("data")[0].GetInt64()); // 1+…+8
        // An escaped name is the same name.
        var (_, escaped) = await Post("/v2/models/multi/infer", $$"""{{{MultiInputs}}, "outputs":[{"name":"\u006cogits"},{"name":"mask"}]}""");
        Assert.Equal(["logits", "mask"], OutputNames(escaped).Order().ToArray());
    }

    [Fact]
    public async Task A_requested_output_the_model_lacks_is_a_400_naming_its_outputs()
    {
        var (code, body) = await Post("/v2/models/multi/infer", $$"""{{{MultiInputs}}, "outputs":[{"name":"nope"}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        var error = body.GetProperty("error").GetString()!;
        Assert.Contains("model 'multi' has no output 'nope'", error);
        Assert.Contains("logits", error);
        (code, body) = await Post("/v2/models/multi/infer", $$"""{{{MultiInputs}}, "outputs":[{"name":"mask"},{"name":"mask"}]}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("requested twice", body.GetProperty("error").GetString());
    }

    [Theory]
    [InlineData("""{"id":{"a":1},"inputs":[]}""", "\"id\" must be a string")]
    [InlineData("""{"outputs":["output"],"inputs":[]}""", "\"outputs\" must be an array of objects")]
    [InlineData("""{"outputs":{"name":"output"},"inputs":[]}""", "\"outputs\" must be an array of objects")]
    [InlineData("""{"inputs":{"name":"input"}}""", "\"inputs\" must be an array")]
    [InlineData("""{"parameters":[],"inputs":[]}""", "\"parameters\" must be an object")]
    [InlineData("""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]} trailing""", "not valid JSON")]
    [InlineData("""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}{}""", "not valid JSON")]
    public async Task Malformed_headers_are_refused_not_skipped(string json, string reason)
    {
        var (code, body) = await Post("/v2/models/mlp/infer", json);
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains(reason, body.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Answers_echo_the_request_id()
    {
        var (code, body) = await Post("/v2/models/multi/infer", $$"""{"id":"req-42",{{MultiInputs}}}""");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("req-42", body.GetProperty("id").GetString());
    }

    [Fact]
    public async Task Metadata_has_platform_versions_and_the_server_its_extensions()
    {
        using var model = JsonDocument.Parse(await _http.GetStringAsync("/v2/models/mlp"));
        Assert.Equal("onnxruntime_onnx", model.RootElement.GetProperty("platform").GetString());
        Assert.Equal(["1"], model.RootElement.GetProperty("versions").EnumerateArray().Select(v => v.GetString()!).ToArray());
        using var server = JsonDocument.Parse(await _http.GetStringAsync("/v2"));
        var extensions = server.RootElement.GetProperty("extensions").EnumerateArray().Select(e => e.GetString()).ToArray();
        Assert.Contains("binary_tensor_data", extensions);
        Assert.Contains("model_repository", extensions);
        Assert.Contains("statistics", extensions);
    }

    [Fact]
    public async Task Only_the_served_version_answers()
    {
        const string body = """{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}""";
        Assert.Equal(HttpStatusCode.OK, (await Post("/v2/models/mlp/versions/1/infer", body)).Code);
        var (code, error) = await Post("/v2/models/mlp/versions/7/infer", body);
        Assert.Equal(HttpStatusCode.NotFound, code);
        Assert.Contains("has no version 7", error.GetProperty("error").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/models/mlp/versions/7")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/models/mlp/versions/7/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/v2/models/mlp/versions/1/ready")).StatusCode);
    }

    private async Task<JsonElement> Stats(string model)
    {
        using var doc = JsonDocument.Parse(await _http.GetStringAsync($"/v2/models/{model}/stats"));
        return doc.RootElement.GetProperty("model_stats").EnumerateArray().Single().Clone();
    }

    private static long Count(JsonElement stats, string what) => stats.GetProperty("inference_stats").GetProperty(what).GetProperty("count").GetInt64();

    [Fact]
    public async Task Statistics_add_up_requests_executions_and_failures()
    {
        const string ok = """{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]},{"name":"input_ids","shape":[1,8],"datatype":"INT64","data":[1,1,1,1,1,1,1,1]}]}""";
        var before = await Stats("multi");
        for (int i = 0; i < 10; i++) Assert.Equal(HttpStatusCode.OK, (await Post("/v2/models/multi/infer", ok)).Code);
        // The core refuses a shape the model does not take (its specs say so): a failed request,
        // counted as one, that never ran.
        const string bad = """{"inputs":[{"name":"features","shape":[1,5],"datatype":"FP32","data":[1,2,3,4,5]},{"name":"input_ids","shape":[1,8],"datatype":"INT64","data":[1,1,1,1,1,1,1,1]}]}""";
        Assert.Equal(HttpStatusCode.BadRequest, (await Post("/v2/models/multi/infer", bad)).Code);
        var after = await Stats("multi");
        Assert.Equal("1", after.GetProperty("version").GetString());
        Assert.Equal(10, after.GetProperty("inference_count").GetInt64() - before.GetProperty("inference_count").GetInt64());
        Assert.Equal(10, Count(after, "success") - Count(before, "success"));
        Assert.Equal(1, Count(after, "fail") - Count(before, "fail"));
        // One after another, each ran alone: one execution per request that ran.
        Assert.Equal(10, after.GetProperty("execution_count").GetInt64() - before.GetProperty("execution_count").GetInt64());
        Assert.True(after.GetProperty("inference_stats").GetProperty("success").GetProperty("ns").GetInt64() > 0);
        Assert.True(after.GetProperty("last_inference").GetInt64() > 1_700_000_000_000);

        // An inference is a row, as Triton counts them: one request of 3 rows to a model that
        // batches is 3 inferences in one execution of batch size 3.
        var one = await Stats("mlp");
        var rows = string.Join(",", Enumerable.Range(0, 48));
        Assert.Equal(HttpStatusCode.OK, (await Post("/v2/models/mlp/infer", $$"""{"inputs":[{"name":"input","shape":[3,16],"datatype":"FP32","data":[{{rows}}]}]}""")).Code);
        var three = await Stats("mlp");
        Assert.Equal(3, three.GetProperty("inference_count").GetInt64() - one.GetProperty("inference_count").GetInt64());
        Assert.Equal(1, three.GetProperty("execution_count").GetInt64() - one.GetProperty("execution_count").GetInt64());
        Assert.Equal(1, Count(three, "success") - Count(one, "success"));
        Assert.Contains(three.GetProperty("batch_stats").EnumerateArray(), b => b.GetProperty("batch_size").GetInt32() == 3);

        // Many at once on a batched model: executions fall behind requests.
        JsonElement stats = default;
        for (int round = 0; round < 20; round++)
        {
            var answers = await Task.WhenAll(Enumerable.Range(0, 32).Select(_ => Post("/v2/models/mlp/infer",
                """{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}""")));
            Assert.All(answers, a => Assert.Equal(HttpStatusCode.OK, a.Code));
            stats = await Stats("mlp");
            // Fewer executions than requests: some were merged (inferences count rows, so the 3-row request above already outnumbers its execution).
            if (stats.GetProperty("execution_count").GetInt64() < Count(stats, "success")) break;
        }
        Assert.True(stats.GetProperty("execution_count").GetInt64() < Count(stats, "success"), stats.ToString());
        Assert.True(stats.GetProperty("execution_count").GetInt64() < stats.GetProperty("inference_count").GetInt64(), stats.ToString());
        Assert.Contains(stats.GetProperty("batch_stats").EnumerateArray(), b => b.GetProperty("batch_size").GetInt32() > 1);
        // Merged batches: the core's gather of inputs and split of outputs are compute_input and
        // compute_output, waiting for the batch is queue. As in Triton, inference_stats count
        // requests (each with its execution's times) and batch_stats count executions by rows.
        long Ns(string what) => stats.GetProperty("inference_stats").GetProperty(what).GetProperty("ns").GetInt64();
        Assert.True(Ns("compute_input") > 0 && Ns("compute_output") > 0 && Ns("queue") > 0, stats.ToString());
        Assert.True(Ns("compute_infer") > Ns("compute_input"), stats.ToString());
        foreach (var what in new[] { "queue", "compute_input", "compute_infer", "compute_output" })
            Assert.Equal(Count(stats, "success"), Count(stats, what));
        var executions = stats.GetProperty("batch_stats").EnumerateArray()
            .Select(b => (Size: b.GetProperty("batch_size").GetInt64(), Count: b.GetProperty("compute_infer").GetProperty("count").GetInt64())).ToArray();
        Assert.Equal(stats.GetProperty("execution_count").GetInt64(), executions.Sum(b => b.Count));
        Assert.Equal(stats.GetProperty("inference_count").GetInt64(), executions.Sum(b => b.Size * b.Count)); // every request here succeeded

        using var all = JsonDocument.Parse(await _http.GetStringAsync("/v2/models/stats"));
        Assert.Equal(2, all.RootElement.GetProperty("model_stats").GetArrayLength());
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/models/none/stats")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _http.GetAsync("/v2/models/mlp/versions/7/stats")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _http.GetAsync("/v2/models/mlp/versions/1/stats")).StatusCode);
    }

    [Fact]
    public async Task Errors_on_the_v2_routes_are_the_protocols_and_on_the_mlos_routes_the_originals()
    {
        using var v2 = JsonDocument.Parse(await (await _http.GetAsync("/v2/models/none")).Content.ReadAsStringAsync());
        Assert.Equal(["error"], v2.RootElement.EnumerateObject().Select(p => p.Name).ToArray());
        using var mlos = JsonDocument.Parse(await (await _http.PostAsync("/models/none/inference",
            new StringContent("{}", Encoding.UTF8, "application/json"))).Content.ReadAsStringAsync());
        Assert.Equal("error", mlos.RootElement.GetProperty("status").GetString());
        Assert.Contains("no model with id 'none'", mlos.RootElement.GetProperty("message").GetString());
    }
}
