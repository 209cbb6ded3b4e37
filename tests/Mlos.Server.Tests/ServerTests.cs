using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>One server over a model root of copies and a symbolic link that points outside it.</summary>
public sealed class ServerFixture : IDisposable
{
    public ServerFixture()
    {
        Root = Directory.CreateTempSubdirectory("mlos-models-").FullName;
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(Root, "mlp.onnx"));
        File.Copy(Path.Combine(BuildTree.Models("torch"), "mlp.pt"), Path.Combine(Root, "mlp.pt"));
        File.WriteAllText(Path.Combine(Root, "echo.bin"), "echo");
        File.CreateSymbolicLink(Path.Combine(Root, "escape.onnx"), "/etc/hostname");
        Server = new ServerProcess(Root, "--max-body-mb", "1");
    }

    public string Root { get; }
    public ServerProcess Server { get; }

    public void Dispose()
    {
        Server.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}

public class ServerTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    private HttpClient Http => fixture.Server.Client;

    private async Task<(HttpStatusCode Code, JsonElement Body)> Send(HttpMethod method, string path, string? json = null, bool expectContinue = false)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null) request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        // As curl does for large bodies: the server can refuse before the body is sent.
        if (expectContinue) request.Headers.ExpectContinue = true;
        using var response = await Http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone());
    }

    [Fact]
    public async Task Health_and_kserve_liveness_answer()
    {
        var (code, body) = await Send(HttpMethod.Get, "/health");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("healthy", body.GetProperty("status").GetString());
        Assert.Equal("mlos-core", body.GetProperty("service").GetString());
        Assert.True((await Send(HttpMethod.Get, "/v2/health/ready")).Body.GetProperty("ready").GetBoolean());
        Assert.Equal("mlos-core", (await Send(HttpMethod.Get, "/v2")).Body.GetProperty("name").GetString());
    }

    [Fact]
    public async Task First_party_plugins_are_loaded_at_start()
    {
        var (_, body) = await Send(HttpMethod.Get, "/plugins");
        var ids = body.GetProperty("plugins").EnumerateArray().Select(p => p.GetProperty("id").GetString()).ToArray();
        Assert.Contains("onnx-runtime", ids);
        Assert.Contains("torchsharp", ids);
        Assert.Contains("csharp-echo", ids);
    }

    [Fact]
    public async Task Plugins_found_at_start_initialize_with_their_first_model()
    {
        // A server of its own: which frameworks are up depends on which models were registered.
        using var server = new ServerProcess(fixture.Root, "--model", "demo=mlp.onnx");
        async Task<Dictionary<string, string>> States()
        {
            using var doc = JsonDocument.Parse(await server.Client.GetStringAsync("/plugins"));
            return doc.RootElement.GetProperty("plugins").EnumerateArray()
                .ToDictionary(p => p.GetProperty("id").GetString()!, p => p.GetProperty("status").GetString()!);
        }
        var states = await States();
        Assert.Equal("initialized", states["onnx-runtime"]); // the model given at start needed it
        Assert.Equal("loaded", states["torchsharp"]);        // listed, libtorch not loaded
        Assert.Equal("loaded", states["csharp-echo"]);
        using var register = await server.Client.PostAsync("/models/register",
            new StringContent("""{"model_id":"t","path":"mlp.pt"}""", Encoding.UTF8, "application/json"));
        Assert.True(register.IsSuccessStatusCode, await register.Content.ReadAsStringAsync());
        Assert.Equal("initialized", (await States())["torchsharp"]);
    }

    [Fact]
    public async Task Dynamic_batching_is_on_by_default_where_the_model_can_batch_and_false_turns_it_off()
    {
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, "/models/register", """{"model_id":"mlp-default","path":"mlp.onnx"}""")).Code);
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, "/models/register", """{"model_id":"mlp-off","path":"mlp.onnx","dynamic_batching":false}""")).Code);
        var on = (await Send(HttpMethod.Get, "/v2/models/mlp-default")).Body.GetProperty("dynamic_batching");
        Assert.True(on.GetProperty("default").GetBoolean());
        Assert.Equal(0, on.GetProperty("max_queue_delay_us").GetInt32());
        Assert.Equal(1 << 20, on.GetProperty("max_merge_bytes").GetInt64());
        Assert.False((await Send(HttpMethod.Get, "/v2/models/mlp-off")).Body.GetProperty("dynamic_batching").GetBoolean());
        var (code, body) = await Send(HttpMethod.Post, "/models/register", """{"model_id":"mlp-bad","path":"mlp.onnx","dynamic_batching":7}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("must be true, false or an object", body.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("onnx-mlp", "mlp.onnx", "onnx", "input")]
    [InlineData("ns/torch-mlp@1.0", "mlp.pt", "torch", "input_0")]
    public async Task A_model_registered_by_file_type_serves_its_reference_outputs(string id, string file, string kind, string input)
    {
        var (code, reg) = await Send(HttpMethod.Post, "/models/register", $$"""{"model_id":"{{id}}","name":"mlp","path":"{{file}}"}""");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal(kind == "onnx" ? "onnx-runtime" : "torchsharp", reg.GetProperty("plugin_id").GetString());

        var reference = File.ReadAllLines(Path.Combine(BuildTree.Models(kind), "mlp.ref")).Where(l => !l.StartsWith('#')).Select(l => l.Split(' ')).ToArray();
        var x = reference[0][6..].Select(double.Parse).ToArray();   // in <name> FP32 2 3 16 <values>
        var y = reference[1][6..].Select(double.Parse).ToArray();
        var rows = string.Join(",", x.Chunk(16).Select(r => "[" + string.Join(",", r) + "]"));
        var (status, answer) = await Send(HttpMethod.Post, $"/models/{Uri.EscapeDataString(id)}/inference", $$"""{"{{input}}":[{{rows}}]}""");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("success", answer.GetProperty("status").GetString());
        Assert.Equal(id, answer.GetProperty("model_id").GetString());
        var output = answer.GetProperty("outputs")[0];
        Assert.Equal("[3,4]", output.GetProperty("shape").GetRawText());
        var got = output.GetProperty("data").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(y.Length, got.Length);
        Assert.All(y.Zip(got), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-5, $"{p.First} vs {p.Second}"));

        var (ready, _) = await Send(HttpMethod.Get, $"/v2/models/{Uri.EscapeDataString(id)}/ready");
        Assert.Equal(HttpStatusCode.OK, ready);
        var (meta, metadata) = await Send(HttpMethod.Get, $"/v2/models/{Uri.EscapeDataString(id)}/versions/1");
        Assert.Equal(HttpStatusCode.OK, meta);
        Assert.Equal(id, metadata.GetProperty("name").GetString());
    }

    [Theory]
    [InlineData("kserve-mlp", "mlp.onnx", "onnx", "input", "output")]
    [InlineData("kserve-torch", "mlp.pt", "torch", "input_0", "output_0")]
    public async Task Kserve_v2_json_tensors_infer_against_the_reference(string id, string file, string kind, string input, string outputName)
    {
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, "/models/register", $$"""{"model_id":"{{id}}","path":"{{file}}"}""")).Code);
        var reference = File.ReadAllLines(Path.Combine(BuildTree.Models(kind), "mlp.ref")).Where(l => !l.StartsWith('#')).Select(l => l.Split(' ')).ToArray();
        var x = string.Join(",", reference[0][6..]);
        var y = reference[1][6..].Select(double.Parse).ToArray();
        var (code, body) = await Send(HttpMethod.Post, $"/v2/models/{id}/infer",
            $$"""{"id":"r1","inputs":[{"name":"{{input}}","shape":[3,16],"datatype":"FP32","data":[{{x}}]}]}""");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal(id, body.GetProperty("model_name").GetString());
        Assert.Equal("r1", body.GetProperty("id").GetString());
        var output = body.GetProperty("outputs")[0];
        Assert.Equal(outputName, output.GetProperty("name").GetString());
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Get, $"/v2/models/{id}/versions/1/ready")).Code);
        Assert.Equal("FP32", output.GetProperty("datatype").GetString());
        Assert.Equal("[3,4]", output.GetProperty("shape").GetRawText());
        var got = output.GetProperty("data").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.All(y.Zip(got), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-5, $"{p.First} vs {p.Second}"));
    }

    [Fact]
    public async Task Kserve_v2_binary_tensors_go_in_and_come_out_raw()
    {
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, "/models/register", """{"model_id":"kserve-bin","path":"mlp.onnx"}""")).Code);
        var reference = File.ReadAllLines(Path.Combine(BuildTree.Models("onnx"), "mlp.ref")).Where(l => !l.StartsWith('#')).Select(l => l.Split(' ')).ToArray();
        var x = reference[0][6..].Select(float.Parse).ToArray();
        var y = reference[1][6..].Select(double.Parse).ToArray();
        var header = Encoding.UTF8.GetBytes("""{"inputs":[{"name":"input","shape":[3,16],"datatype":"FP32","parameters":{"binary_data_size":192}}],"parameters":{"binary_data_output":true}}""");
        var body = header.Concat(x.SelectMany(BitConverter.GetBytes)).ToArray();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v2/models/kserve-bin/infer") { Content = new ByteArrayContent(body) };
        request.Content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", header.Length.ToString());
        request.Content.Headers.ContentType = new("application/octet-stream");
        using var response = await Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        int length = int.Parse(response.Headers.GetValues("Inference-Header-Content-Length").Single());
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var json = JsonDocument.Parse(bytes.AsMemory(0, length)).RootElement;
        var output = json.GetProperty("outputs")[0];
        Assert.Equal(48, output.GetProperty("parameters").GetProperty("binary_data_size").GetInt32());
        Assert.False(output.TryGetProperty("data", out _));
        var got = Enumerable.Range(0, 12).Select(i => (double)BitConverter.ToSingle(bytes, length + 4 * i)).ToArray();
        Assert.Equal(bytes.Length, length + 48);
        Assert.All(y.Zip(got), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-5, $"{p.First} vs {p.Second}"));

        // A size that does not match the shape is refused.
        var bad = Encoding.UTF8.GetBytes("""{"inputs":[{"name":"input","shape":[3,16],"datatype":"FP32","parameters":{"binary_data_size":100}}]}""");
        using var badRequest = new HttpRequestMessage(HttpMethod.Post, "/v2/models/kserve-bin/infer") { Content = new ByteArrayContent(bad.Concat(new byte[100]).ToArray()) };
        badRequest.Content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", bad.Length.ToString());
        using var badResponse = await Http.SendAsync(badRequest);
        Assert.Equal(HttpStatusCode.BadRequest, badResponse.StatusCode);
        Assert.Contains("has 100 bytes; shape [3,16] of FP32 needs 192", await badResponse.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Kserve_v2_requests_are_batched_when_the_model_asks_and_report_their_batch()
    {
        var (code, body) = await Send(HttpMethod.Post, "/models/register",
            """{"model_id":"mlp-batched","path":"mlp.onnx","dynamic_batching":{"max_batch_size":16,"max_queue_delay_us":100000}}""");
        Assert.True(code == HttpStatusCode.OK, body.ToString());
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, "/models/register", """{"model_id":"mlp-alone","path":"mlp.onnx","dynamic_batching":false}""")).Code);
        var rows = Enumerable.Range(0, 12).Select(i => Enumerable.Range(0, 16).Select(k => (i * 16 + k) / 100f).ToArray()).ToArray();

        async Task<(float[] Y, int Batch, long QueueUs)> Infer(string model, float[] x)
        {
            // Binary input; one output named for binary, so the header still says where it is.
            var header = Encoding.UTF8.GetBytes("""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}],"outputs":[{"name":"output","parameters":{"binary_data":true}}]}""");
            using var request = new HttpRequestMessage(HttpMethod.Post, $"/v2/models/{model}/infer")
            { Content = new ByteArrayContent(header.Concat(x.SelectMany(BitConverter.GetBytes)).ToArray()) };
            request.Content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", header.Length.ToString());
            using var response = await Http.SendAsync(request);
            var bytes = await response.Content.ReadAsByteArrayAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, Encoding.UTF8.GetString(bytes));
            int length = int.Parse(response.Headers.GetValues("Inference-Header-Content-Length").Single());
            var json = JsonDocument.Parse(bytes.AsMemory(0, length)).RootElement;
            var parameters = json.GetProperty("parameters");
            var y = Enumerable.Range(0, 4).Select(i => BitConverter.ToSingle(bytes, length + 4 * i)).ToArray();
            return (y, parameters.GetProperty("batch_size").GetInt32(), parameters.GetProperty("queue_time_us").GetInt64());
        }

        var batched = await Task.WhenAll(rows.Select(x => Infer("mlp-batched", x)));
        Assert.Contains(batched, r => r.Batch > 1);
        Assert.All(batched, r => Assert.InRange(r.Batch, 1, 12));
        for (int i = 0; i < rows.Length; i++)
        {
            var alone = await Infer("mlp-alone", rows[i]);
            Assert.Equal(1, alone.Batch);
            Assert.Equal(0, alone.QueueUs);
            Assert.Equal(alone.Y, batched[i].Y); // merged and unmerged answers are the same bits
        }
        using var metrics = await Http.GetAsync("/metrics");
        Assert.Contains("model=\"mlp-batched\",le=\"16\"", await metrics.Content.ReadAsStringAsync());

        (code, body) = await Send(HttpMethod.Post, "/models/register", """{"model_id":"bad-batch","path":"mlp.onnx","dynamic_batching":{"max_batch_size":-1}}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("'max_batch_size' must be an integer from 1", body.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("kserve-bad", """{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP33","data":[1]}]}""", HttpStatusCode.BadRequest, "needs a KServe \"datatype\"")]
    [InlineData("kserve-bad", """{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2]}]}""", HttpStatusCode.BadRequest, "has 2 values; shape [1,16] needs 16")]
    [InlineData("kserve-bad", """{"inputs":[{"name":"input","shape":[1,2],"datatype":"FP32","data":[[1,"x"]]}]}""", HttpStatusCode.BadRequest, "(FP32) needs a number, not")]
    [InlineData("kserve-bad", """{"inputs":[{"name":"input","shape":[2],"datatype":"INT64","data":[1,2.5]}]}""", HttpStatusCode.BadRequest, "(INT64) needs an INT64, not 2.5")]
    [InlineData("kserve-bad", """{"inputs":[{"name":"input","shape":[1,16],"datatype":"INT32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}""", HttpStatusCode.BadRequest, "expects FP32")]
    [InlineData("kserve-bad", """{"inputs":[{"name":"input","shape":[1,15],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}]}""", HttpStatusCode.BadRequest, "expects [-1,16]")]
    [InlineData("kserve-bad", """{"outputs":[]}""", HttpStatusCode.BadRequest, "needs \"inputs\"")]
    [InlineData("no-such-model", """{"inputs":[]}""", HttpStatusCode.NotFound, "no model with id 'no-such-model'")]
    public async Task Kserve_v2_bad_requests_are_json_errors(string model, string json, HttpStatusCode expected, string reason)
    {
        await Send(HttpMethod.Post, "/models/register", """{"model_id":"kserve-bad","path":"mlp.onnx"}""");
        var (code, body) = await Send(HttpMethod.Post, $"/v2/models/{model}/infer", json);
        Assert.Equal(expected, code);
        // The protocol's error body, which KServe and Triton clients read: {"error": "..."} alone.
        Assert.Contains(reason, body.GetProperty("error").GetString());
        Assert.Single(body.EnumerateObject());
    }

    [Fact]
    public async Task A_string_input_goes_to_a_raw_bytes_plugin_and_comes_back_as_a_string()
    {
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, "/models/register", """{"model_id":"echo","plugin_id":"csharp-echo","path":"echo.bin"}""")).Code);
        var (code, body) = await Send(HttpMethod.Post, "/models/echo/inference", """{"input":"test data"}""");
        Assert.Equal(HttpStatusCode.OK, code);
        Assert.Equal("test data", body.GetProperty("outputs").GetString());
        Assert.Equal(9, body.GetProperty("output_size").GetInt32());
    }

    [Theory]
    [InlineData("""{"model_id":"a","path":"../../etc/passwd"}""", "outside the model root")]
    [InlineData("""{"model_id":"b","path":"escape.onnx"}""", "outside the model root")]
    [InlineData("""{"model_id":"c","path":"missing.onnx"}""", "model file not found")]
    [InlineData("""{"model_id":"d","path":"echo.bin"}""", "no plugin known for '.bin'")]
    [InlineData("""{"model_id":"e"}""", "needs a path")]
    [InlineData("""{"model_id":"f","plugin_id":"no-such-plugin","path":"mlp.onnx"}""", "no plugin with id 'no-such-plugin'")]
    [InlineData("""[1,2]""", "must be a JSON object")]
    [InlineData("""{"model_id":""", "not valid JSON")]
    public async Task Bad_registrations_are_json_errors_and_leave_nothing_behind(string json, string reason)
    {
        var (code, body) = await Send(HttpMethod.Post, "/models/register", json);
        Assert.True(code is HttpStatusCode.BadRequest or HttpStatusCode.NotFound, $"{code}");
        Assert.Equal("error", body.GetProperty("status").GetString());
        Assert.Contains(reason, body.GetProperty("message").GetString());
        var models = (await Send(HttpMethod.Get, "/models")).Body.GetProperty("models").EnumerateArray().Select(m => m.GetProperty("id").GetString());
        Assert.DoesNotContain(JsonDocument.Parse(json.StartsWith('{') && json.EndsWith('}') ? json : "{}").RootElement.TryGetProperty("model_id", out var id) ? id.GetString() : "", models);
    }

    [Fact]
    public async Task Plugins_load_only_from_allowed_folders()
    {
        var (code, body) = await Send(HttpMethod.Post, "/plugins/register", """{"id":"x","endpoint":"file:///usr/lib/x86_64-linux-gnu/libz.so.1"}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("outside the allowed plugin folders", body.GetProperty("message").GetString());
        // A relative file:// endpoint resolves against the working folder (the build tree here).
        (code, body) = await Send(HttpMethod.Post, "/plugins/register", """{"id":"again","endpoint":"file://./plugins/libmlos_echo_plugin.so"}""");
        Assert.Equal(HttpStatusCode.Conflict, code);
        Assert.Contains("already loaded as 'csharp-echo'", body.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Errors_are_json_with_the_right_codes()
    {
        var (code, body) = await Send(HttpMethod.Post, "/models/nope/inference", """{"x":[1]}""");
        Assert.Equal(HttpStatusCode.NotFound, code);
        Assert.Contains("no model with id 'nope'", body.GetProperty("message").GetString());
        (code, _) = await Send(HttpMethod.Get, "/no/such/route");
        Assert.Equal(HttpStatusCode.NotFound, code);
        (code, body) = await Send(HttpMethod.Post, "/models/register", "{\"model_id\":\"big\",\"pad\":\"" + new string('x', 2 << 20) + "\"}", expectContinue: true);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, code);
        Assert.Contains("larger than 1 MB", body.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Metrics_are_prometheus_text_per_model_and_route()
    {
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, "/models/register", """{"model_id":"metered","path":"mlp.onnx"}""")).Code);
        var rows = "[" + string.Join(",", Enumerable.Repeat("0.5", 16)) + "]";
        Assert.Equal(HttpStatusCode.OK, (await Send(HttpMethod.Post, "/models/metered/inference", $$"""{"input":[{{rows}}]}""")).Code);
        await Send(HttpMethod.Post, "/models/nope/inference", """{"x":[1]}""");
        string text = "";
        for (int i = 0; i < 50 && !text.Contains("model=\"metered\""); i++)
        {
            text = await Http.GetStringAsync("/metrics");
            if (!text.Contains("model=\"metered\"")) await Task.Delay(100);
        }
        Assert.Contains("mlos_inference_duration_seconds_bucket{otel_scope_name=\"Mlos.Server\",model=\"metered\",le=\"0.0001\"}", text);
        Assert.Contains("mlos_queue_duration_seconds_count{otel_scope_name=\"Mlos.Server\",model=\"metered\"}", text);
        Assert.Contains("mlos_requests_total{", text);
        Assert.Matches("mlos_request_failures_total\\{[^}]*code=\"404\"", text);
    }

    [Fact]
    public async Task Stats_count_requests()
    {
        await Send(HttpMethod.Get, "/health");
        var (_, body) = await Send(HttpMethod.Get, "/stats");
        Assert.True(body.GetProperty("total_requests").GetInt64() >= 1);
        Assert.True(body.GetProperty("uptime_seconds").GetDouble() >= 0);
    }
}

public class ServerCommandLineTests
{
    private static (int Code, string Error) Run(params string[] args)
    {
        var info = new ProcessStartInfo(BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core"))) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit(10000);
        return (p.ExitCode, error);
    }

    [Fact]
    public void Listening_beyond_loopback_is_refused()
    {
        var (code, error) = Run("--host", "0.0.0.0");
        Assert.Equal(2, code);
        Assert.Contains("only loopback", error);
    }

    [Fact]
    public void Unknown_options_are_refused_and_help_explains()
    {
        Assert.Equal(2, Run("--frobnicate").Code);
        var info = new ProcessStartInfo(BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core")), "--help") { RedirectStandardOutput = true };
        using var p = Process.Start(info)!;
        var text = p.StandardOutput.ReadToEnd();
        p.WaitForExit(10000);
        Assert.Equal(0, p.ExitCode);
        Assert.Contains("--http-port", text);
        Assert.Contains("--model-root", text);
    }
}

public class AdminTokenTests
{
    [Fact]
    public async Task Mutating_routes_need_the_bearer_token_and_reads_do_not()
    {
        var root = Directory.CreateTempSubdirectory("mlos-admin-").FullName;
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(root, "mlp.onnx"));
        try
        {
            using var server = new ServerProcess(root, "--admin-token", "s3cret-token");
            const string json = """{"model_id":"m","path":"mlp.onnx"}""";
            async Task<HttpStatusCode> Register(string? auth)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, "/models/register") { Content = new StringContent(json, Encoding.UTF8, "application/json") };
                if (auth is not null) request.Headers.TryAddWithoutValidation("Authorization", auth);
                using var response = await server.Client.SendAsync(request);
                return response.StatusCode;
            }
            Assert.Equal(HttpStatusCode.Unauthorized, await Register(null));
            Assert.Equal(HttpStatusCode.Forbidden, await Register("Bearer wrong-token"));
            Assert.Equal(HttpStatusCode.OK, await Register("Bearer s3cret-token"));
            Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/models")).StatusCode);
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}

public class OverloadTests
{
    [Fact]
    public async Task A_model_over_its_queue_bound_answers_503_at_once()
    {
        var root = Directory.CreateTempSubdirectory("mlos-busy-").FullName;
        File.WriteAllText(Path.Combine(root, "slow.bin"), "slow");
        try
        {
            using var server = new ServerProcess(root, "--max-queue", "2");
            var reg = await server.Client.PostAsync("/models/register",
                new StringContent("""{"model_id":"slow","plugin_id":"csharp-echo","path":"slow.bin","config":{"delay_us":400000}}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, reg.StatusCode);
            var started = Stopwatch.StartNew();
            var calls = Enumerable.Range(0, 6).Select(async _ =>
            {
                var response = await server.Client.PostAsync("/models/slow/inference", new StringContent("""{"input":"x"}"""));
                var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
                return (response.StatusCode, body, started.ElapsedMilliseconds);
            }).ToArray();
            var results = await Task.WhenAll(calls);
            var busy = results.Where(r => r.StatusCode == HttpStatusCode.ServiceUnavailable).ToArray();
            Assert.NotEmpty(busy);
            Assert.Contains(results, r => r.StatusCode == HttpStatusCode.OK);
            Assert.All(busy, r => Assert.Contains("is overloaded", r.body.GetProperty("message").GetString()));
            Assert.All(results, r => Assert.True(r.StatusCode is HttpStatusCode.OK or HttpStatusCode.ServiceUnavailable, $"{r.StatusCode}"));
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}

public class ModelRepositoryTests
{
    [Fact]
    public async Task Repository_models_load_at_start_and_through_the_v2_routes()
    {
        var repo = Directory.CreateTempSubdirectory("mlos-repo-").FullName;
        Directory.CreateDirectory(Path.Combine(repo, "mlp"));
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(repo, "mlp", "model.onnx"));
        Directory.CreateDirectory(Path.Combine(repo, "tokens"));
        File.Copy(Path.Combine(BuildTree.Models("torch"), "tokens.pt"), Path.Combine(repo, "tokens", "weights.bin"));
        File.WriteAllText(Path.Combine(repo, "tokens", "config.json"), """{"plugin_id":"torchsharp","file":"weights.bin","framework":"pytorch"}""");
        Directory.CreateDirectory(Path.Combine(repo, "mlp-batched"));
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(repo, "mlp-batched", "model.onnx"));
        File.WriteAllText(Path.Combine(repo, "mlp-batched", "config.json"), """{"dynamic_batching":{"max_batch_size":8,"max_queue_delay_us":1000000}}""");
        Directory.CreateDirectory(Path.Combine(repo, "broken"));
        try
        {
            using var server = new ServerProcess(repo, "--model-repository", repo, "--model-control-mode", "explicit", "--load-model", "*");
            async Task<Dictionary<string, string>> Index()
            {
                var r = await server.Client.PostAsync("/v2/repository/index", null);
                return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.EnumerateArray()
                    .ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("state").GetString()!);
            }
            var index = await Index();
            Assert.Equal("READY", index["mlp"]);
            Assert.Equal("READY", index["tokens"]);
            Assert.Equal("UNAVAILABLE", index["broken"]);

            // config.json's dynamic_batching reaches the core: concurrent requests share batches
            // (a batch waits up to 1 s to fill, wide enough for requests that a loaded machine spreads out).
            var x = string.Join(",", Enumerable.Range(0, 16));
            var batchSizes = await Task.WhenAll(Enumerable.Range(0, 6).Select(async _ =>
            {
                using var r = await server.Client.PostAsync("/v2/models/mlp-batched/infer",
                    new StringContent($$"""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[{{x}}]}]}"""));
                var body = JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement;
                return body.GetProperty("parameters").GetProperty("batch_size").GetInt32();
            }));
            Assert.Contains(batchSizes, b => b > 1);

            Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/v2/repository/models/mlp/unload", Admin.Empty)).StatusCode);
            Assert.Equal("UNAVAILABLE", (await Index())["mlp"]);
            var refused = await server.Client.PostAsync("/models/mlp/inference", new StringContent("""{"input":[[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]]}"""));
            Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
            // The protocol's routes say "unavailable" (503, as gRPC's UNAVAILABLE): it may serve later.
            var unavailable = await server.Client.PostAsync("/v2/models/mlp/infer", new StringContent(
                """{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, unavailable.StatusCode);
            Assert.Contains("not loaded", JsonDocument.Parse(await unavailable.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString());
            Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/v2/repository/models/mlp/load", Admin.Empty)).StatusCode);
            Assert.Equal("READY", (await Index())["mlp"]);
            var ok = await server.Client.PostAsync("/models/mlp/inference", new StringContent("""{"input":[[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]]}"""));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

            var broken = await server.Client.PostAsync("/v2/repository/models/broken/load", Admin.Empty);
            Assert.Equal(HttpStatusCode.NotFound, broken.StatusCode);
            Assert.Contains("has no model file", await broken.Content.ReadAsStringAsync());
            var missing = await server.Client.PostAsync("/v2/repository/models/..%2Fetc/load", Admin.Empty);
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        }
        finally { Directory.Delete(repo, recursive: true); }
    }
}

public class UnloadUnderLoadTests
{
    [Fact]
    public async Task Unloading_while_requests_run_lets_them_finish_and_refuses_new_ones_cleanly()
    {
        var root = Directory.CreateTempSubdirectory("mlos-unload-").FullName;
        File.WriteAllText(Path.Combine(root, "slow.bin"), "slow");
        try
        {
            using var server = new ServerProcess(root);
            var reg = await server.Client.PostAsync("/models/register",
                new StringContent("""{"model_id":"slow","plugin_id":"csharp-echo","path":"slow.bin","config":{"delay_us":5000000}}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, reg.StatusCode);
            var running = server.Client.PostAsync("/models/slow/inference", new StringContent("""{"input":"in flight"}"""));
            await Task.Delay(2000); // inside the plugin by then, with 3 s of its run to go
            var unload = await server.Client.PostAsync("/v2/repository/models/slow/unload", Admin.Empty);
            Assert.Equal(HttpStatusCode.OK, unload.StatusCode);
            var first = await running;
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Contains("in flight", await first.Content.ReadAsStringAsync());
            var after = await server.Client.PostAsync("/models/slow/inference", new StringContent("""{"input":"late"}"""));
            Assert.Equal(HttpStatusCode.Conflict, after.StatusCode);
            Assert.Contains("not loaded", await after.Content.ReadAsStringAsync());
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}

public class ConfigFileTests
{
    [Fact]
    public async Task A_config_file_sets_what_the_command_line_does_not()
    {
        var root = Directory.CreateTempSubdirectory("mlos-config-").FullName;
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(root, "mlp.onnx"));
        var config = Path.Combine(root, "server.json");
        File.WriteAllText(config, """{"models":{"cfg-mlp":"mlp.onnx"},"max_queue":5,"max_body_mb":2}""");
        try
        {
            using var server = new ServerProcess(root, "-c", config);
            var models = await server.Client.GetStringAsync("/models");
            Assert.Contains("\"id\":\"cfg-mlp\"", models);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Theory]
    [InlineData("""{"http_prt":1}""", "unknown key 'http_prt'")]
    [InlineData("""{"http_port":"x"}""", "'http_port' has the wrong type")]
    [InlineData("""{"max_queue":0}""", "out of range")]
    [InlineData("""not json""", "cannot read config")]
    public void A_bad_config_file_stops_the_server_with_a_reason(string json, string reason)
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, json);
        try
        {
            var info = new ProcessStartInfo(BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core")), ["-c", file]) { RedirectStandardError = true };
            using var p = Process.Start(info)!;
            var error = p.StandardError.ReadToEnd();
            p.WaitForExit(10000);
            Assert.Equal(2, p.ExitCode);
            Assert.Contains(reason, error);
        }
        finally { File.Delete(file); }
    }
}
