using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Mlos.Tests;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace Mlos.Server.Tests;

/// <summary>
/// One server over a model root holding copies of the ONNX MLP (input "input" FP32 [-1,16]) and
/// the strings model (input "text" BYTES [-1], output "upper"), registered over HTTP, plus the
/// models the id-decoding and admin-route tests need.
/// </summary>
public sealed class HostileFixture : IDisposable
{
    public HostileFixture()
    {
        Root = Directory.CreateTempSubdirectory("mlos-hostile-").FullName;
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(Root, "mlp.onnx"));
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "strings.onnx"), Path.Combine(Root, "strings.onnx"));
        Server = new ServerProcess(Root);
        foreach (var (id, file) in new[]
                 {
                     ("mlp", "mlp.onnx"), ("strings", "strings.onnx"), ("a@b", "mlp.onnx"), ("a%40b", "mlp.onnx"),
                     ("adm-415", "mlp.onnx"), ("adm-origin", "mlp.onnx"), ("adm-origin-ok", "mlp.onnx"),
                     ("adm-host", "mlp.onnx"), ("adm-host-ok", "mlp.onnx"),
                 })
            Register(Server, id, file);
    }

    public string Root { get; }
    public ServerProcess Server { get; }

    public static void Register(ServerProcess server, string id, string file)
    {
        var json = JsonSerializer.Serialize(new Dictionary<string, string> { ["model_id"] = id, ["path"] = file });
        using var response = server.Client.PostAsync("/models/register", new StringContent(json, Encoding.UTF8, "application/json")).Result;
        var text = response.Content.ReadAsStringAsync().Result;
        if (response.StatusCode != HttpStatusCode.OK)
            throw new InvalidOperationException($"registering {id} ({file}) answered {(int)response.StatusCode}: {text}");
    }

    public void Dispose()
    {
        Server.Dispose();
        Directory.Delete(Root, recursive: true);
    }
}

/// <summary>An answer: status, raw body, and the binary-extension header length when there is one.</summary>
internal sealed record Reply(int Status, byte[] Body, int? HeaderLength)
{
    public string Text => Encoding.UTF8.GetString(Body);

    /// <summary>The JSON part of the body (all of it, or the header of a binary answer), or null when it is not JSON.</summary>
    public JsonElement? Json
    {
        get
        {
            var json = HeaderLength is { } n && n >= 0 && n <= Body.Length ? Body.AsMemory(0, n) : Body.AsMemory();
            try
            {
                using var doc = JsonDocument.Parse(json);
                return doc.RootElement.Clone();
            }
            catch (JsonException) { return null; }
        }
    }

    public override string ToString() => $"{Status} {Clip(Text, 400)}";

    public static string Clip(string s, int n) => s.Length <= n ? s : s[..n] + $"…({s.Length} chars)";
}

/// <summary>
/// Every answer of this suite goes through here, so the suite can say afterwards whether any 5xx
/// body showed internals (rule 2), whichever test provoked it.
/// </summary>
internal static class Wire
{
    public static readonly ConcurrentQueue<(string What, Reply Reply)> ServerErrors = new();

    private static readonly Regex[] Leaks =
    [
        new(@"\b[A-Z]\w*Exception\b"),
        new("/onnxruntime_src"),
        new(@"\.(cc|cpp|h|hpp|cs):\d+"),
    ];

    /// <summary>What in a 5xx body matches a leak pattern, or null. The raw text and the decoded message are both checked.</summary>
    public static string? Leak(Reply reply)
    {
        var texts = new List<string> { reply.Text };
        if (reply.Json is { ValueKind: JsonValueKind.Object } j)
            foreach (var key in (string[])["message", "error"]) // the MLOS routes' and the v2 routes' error bodies
                if (j.TryGetProperty(key, out var m) && m.ValueKind == JsonValueKind.String) texts.Add(m.GetString()!);
        foreach (var t in texts)
            foreach (var r in Leaks)
                if (r.Match(t) is { Success: true } hit) return $"'{hit.Value}' (/{r}/)";
        return null;
    }

    public static Reply Observe(string what, Reply reply)
    {
        if (reply.Status >= 500) ServerErrors.Enqueue((what, reply));
        return reply;
    }

    public static async Task<Reply> Send(HttpClient http, HttpRequestMessage request, string what, CancellationToken cancel = default)
    {
        using (request)
        {
            using var response = await http.SendAsync(request, cancel);
            var body = await response.Content.ReadAsByteArrayAsync(cancel);
            int? header = response.Headers.TryGetValues("Inference-Header-Content-Length", out var v) && int.TryParse(v.First(), out var n) ? n : null;
            return Observe(what, new Reply((int)response.StatusCode, body, header));
        }
    }

    public static HttpRequestMessage Post(string path, byte[]? body, string? contentType, params (string Name, string Value)[] headers)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            if (contentType is not null) request.Content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        }
        foreach (var (name, value) in headers)
        {
            if (name.Equals("Host", StringComparison.OrdinalIgnoreCase)) request.Headers.Host = value;
            else if (name.StartsWith("Inference-", StringComparison.Ordinal) && request.Content is not null)
                request.Content.Headers.TryAddWithoutValidation(name, value);
            else request.Headers.TryAddWithoutValidation(name, value);
        }
        return request;
    }

    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    public static async Task<Reply> Json(HttpClient http, string path, string json, params (string, string)[] headers) =>
        await Send(http, Post(path, Utf8(json), "application/json", headers), $"POST {path}");

    /// <summary>A KServe binary request: the JSON header, then the tensor bytes.</summary>
    public static async Task<Reply> Binary(HttpClient http, string path, string header, byte[] tensors, string? headerLength = null)
    {
        var h = Utf8(header);
        return await Send(http, Post(path, [.. h, .. tensors], "application/octet-stream",
            ("Inference-Header-Content-Length", headerLength ?? h.Length.ToString())), $"POST {path} (binary)");
    }

    /// <summary>
    /// Raw bytes over a TcpClient (with <c>Connection: close</c> in them), the answer read to its
    /// end. A reset after the whole answer came is not a failure; one before is.
    /// </summary>
    public static async Task<Reply> Raw(int port, byte[] request, string what)
    {
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(IPAddress.Loopback, port);
        var stream = tcp.GetStream();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        await stream.WriteAsync(request, cancel.Token);
        var received = new MemoryStream();
        var chunk = new byte[16384];
        while (true)
        {
            int n;
            try { n = await stream.ReadAsync(chunk, cancel.Token); }
            catch (IOException) when (Complete(received.ToArray())) { break; }
            if (n == 0) break;
            received.Write(chunk, 0, n);
            if (Complete(received.ToArray())) break;
        }
        var bytes = received.ToArray();
        int end = HeaderEnd(bytes);
        Assert.True(end > 0, $"{what}: no HTTP answer, only {bytes.Length} bytes: {Encoding.ASCII.GetString(bytes)}");
        var head = Encoding.ASCII.GetString(bytes, 0, end);
        var status = int.Parse(head.Split(' ')[1]);
        return Observe(what, new Reply(status, bytes[(end + 4)..], null));
    }

    private static int HeaderEnd(byte[] b) => b.AsSpan().IndexOf("\r\n\r\n"u8);

    private static bool Complete(byte[] b)
    {
        int end = HeaderEnd(b);
        if (end < 0) return false;
        var m = Regex.Match(Encoding.ASCII.GetString(b, 0, end), @"(?im)^Content-Length:\s*(\d+)");
        return m.Success && b.Length - end - 4 >= long.Parse(m.Groups[1].Value);
    }

    /// <summary>Peak resident set size of a process (VmHWM), in bytes.</summary>
    public static long PeakRss(int pid)
    {
        var line = File.ReadAllLines($"/proc/{pid}/status").Single(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
    }

    /// <summary>The MLP reference: input rows (3x16) and expected outputs (3x4).</summary>
    public static (float[] X, double[] Y) MlpReference()
    {
        var reference = File.ReadAllLines(Path.Combine(BuildTree.Models("onnx"), "mlp.ref")).Where(l => !l.StartsWith('#')).Select(l => l.Split(' ')).ToArray();
        return (reference[0][6..].Select(float.Parse).ToArray(), reference[1][6..].Select(double.Parse).ToArray());
    }

    /// <summary>Asserts that the server still answers a correct MLP inference with the reference outputs.</summary>
    public static async Task AssertMlpReference(HttpClient http, string model = "mlp")
    {
        var (x, y) = MlpReference();
        var reply = await Json(http, $"/v2/models/{model}/infer",
            $$"""{"inputs":[{"name":"input","shape":[3,16],"datatype":"FP32","data":[{{string.Join(",", x)}}]}]}""");
        Assert.True(reply.Status == 200, $"reference inference: {reply}");
        var output = reply.Json!.Value.GetProperty("outputs")[0];
        Assert.Equal("[3,4]", output.GetProperty("shape").GetRawText());
        var got = output.GetProperty("data").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        Assert.Equal(y.Length, got.Length);
        Assert.All(y.Zip(got), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-5, $"{p.First} vs {p.Second}"));
    }

    /// <summary>One assertion over many cases, so a failure lists every case that broke the rule.</summary>
    public static void AssertEach(IEnumerable<(string Case, Reply Reply, bool Ok, string Want)> results)
    {
        var bad = results.Where(r => !r.Ok).Select(r => $"  {r.Case}: want {r.Want}, got {r.Reply}").ToArray();
        Assert.True(bad.Length == 0, "\n" + string.Join("\n", bad));
    }
}

/// <summary>Runs the 5xx-body check after every other test of the class, so it sees what they provoked.</summary>
public sealed class LeakCheckRunsLast : ITestCaseOrderer
{
    public IEnumerable<TTestCase> OrderTestCases<TTestCase>(IEnumerable<TTestCase> testCases) where TTestCase : ITestCase =>
        testCases.OrderBy(t => t.TestMethod.Method.Name == nameof(HostileInputTests.Server_errors_never_show_exception_types_or_source_paths) ? 1 : 0)
            .ThenBy(t => t.TestMethod.Method.Name, StringComparer.Ordinal);
}

[TestCaseOrderer("Mlos.Server.Tests.LeakCheckRunsLast", "Mlos.Server.Tests")]
public class HostileInputTests(HostileFixture fixture, ITestOutputHelper output) : IClassFixture<HostileFixture>
{
    private HttpClient Http => fixture.Server.Client;
    private int Port => fixture.Server.Port;

    private static readonly string MlpRow = string.Join(",", Enumerable.Range(0, 16).Select(i => (i / 10.0).ToString("0.0")));

    // ---- 1. KServe BYTES with a lying shape --------------------------------------------------

    [Fact]
    public async Task Binary_bytes_with_a_shape_of_1e8_is_400_quickly_and_allocates_nothing_large()
    {
        // Its own server, so that the peak RSS before is not already raised by other tests.
        var root = Directory.CreateTempSubdirectory("mlos-hostile-rss-").FullName;
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "strings.onnx"), Path.Combine(root, "strings.onnx"));
        try
        {
            using var server = new ServerProcess(root);
            HostileFixture.Register(server, "strings", "strings.onnx");
            long before = Wire.PeakRss(server.Pid);
            var clock = Stopwatch.StartNew();
            var reply = await Wire.Binary(server.Client, "/v2/models/strings/infer",
                """{"inputs":[{"name":"text","shape":[100000000],"datatype":"BYTES","parameters":{"binary_data_size":4}}]}""", [1, 0, 0, 0]);
            var elapsed = clock.Elapsed;
            long grown = Wire.PeakRss(server.Pid) - before;
            output.WriteLine($"answer {reply} after {elapsed.TotalSeconds:F2} s; peak RSS grew by {grown >> 20} MB");
            Assert.True(reply.Status == 400, $"want 400, got {reply}");
            Assert.True(elapsed < TimeSpan.FromSeconds(5), $"answered after {elapsed.TotalSeconds:F2} s");
            Assert.True(grown < 200L << 20, $"peak RSS grew by {grown >> 20} MB");
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task Binary_bytes_with_a_shape_of_2e40_is_400_not_500()
    {
        var reply = await Wire.Binary(Http, "/v2/models/strings/infer",
            """{"inputs":[{"name":"text","shape":[1099511627776],"datatype":"BYTES","parameters":{"binary_data_size":4}}]}""", [1, 0, 0, 0]);
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
    }

    [Fact]
    public async Task Json_bytes_whose_shape_claims_more_elements_than_its_data_is_400()
    {
        var reply = await Wire.Json(Http, "/v2/models/strings/infer",
            """{"inputs":[{"name":"text","shape":[100000000],"datatype":"BYTES","data":["a","b"]}]}""");
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
    }

    // ---- 3. The admin surface ----------------------------------------------------------------

    private string EchoPluginBody => JsonSerializer.Serialize(new Dictionary<string, string> { ["endpoint"] = "file://" + BuildTree.EchoPlugin });

    /// <summary>The four admin routes, each with a JSON body that would be accepted (register ids unique per call).</summary>
    private (string Path, string Json)[] AdminRoutes(string model) =>
    [
        ("/plugins/register", EchoPluginBody),
        ("/models/register", $$"""{"model_id":"adm-{{Guid.NewGuid():N}}","path":"mlp.onnx"}"""),
        ($"/v2/repository/models/{model}/unload", "{}"),
        ($"/v2/repository/models/{model}/load", "{}"),
    ];

    private async Task<string[]> ModelIds() =>
        (await Wire.Send(Http, new HttpRequestMessage(HttpMethod.Get, "/models"), "GET /models")).Json!.Value
        .GetProperty("models").EnumerateArray().Select(m => m.GetProperty("id").GetString()!).ToArray();

    [Fact]
    public async Task Admin_routes_refuse_bodies_that_are_not_declared_json_with_415()
    {
        var results = new List<(string, Reply, bool, string)>();
        foreach (var contentType in new[] { "text/plain", null })
            foreach (var (path, json) in AdminRoutes("adm-415"))
            {
                var reply = await Wire.Send(Http, Wire.Post(path, Wire.Utf8(json), contentType), $"POST {path}");
                results.Add(($"POST {path} Content-Type: {contentType ?? "(none)"}", reply, reply.Status == 415, "415"));
            }
        Wire.AssertEach(results);
    }

    [Fact]
    public async Task Admin_routes_refuse_a_foreign_origin_with_403()
    {
        var results = new List<(string, Reply, bool, string)>();
        var registered = new List<string>();
        foreach (var (path, json) in AdminRoutes("adm-origin"))
        {
            if (path == "/models/register") registered.Add(JsonDocument.Parse(json).RootElement.GetProperty("model_id").GetString()!);
            var reply = await Wire.Json(Http, path, json, ("Origin", "http://evil.example"));
            results.Add(($"POST {path} Origin: http://evil.example", reply, reply.Status == 403, "403"));
        }
        Wire.AssertEach(results);
        Assert.DoesNotContain(registered[0], await ModelIds());
    }

    [Fact]
    public async Task Admin_routes_accept_loopback_origins()
    {
        var results = new List<(string, Reply, bool, string)>();
        foreach (var origin in new[] { $"http://localhost:{Port}", $"http://127.0.0.1:{Port}" })
            foreach (var (path, json) in AdminRoutes("adm-origin-ok"))
            {
                var reply = await Wire.Json(Http, path, json, ("Origin", origin));
                // The echo plugin is loaded at start: registering it again is a conflict, not a refusal.
                bool ok = path == "/plugins/register" ? reply.Status == 409 : reply.Status == 200;
                results.Add(($"POST {path} Origin: {origin}", reply, ok, path == "/plugins/register" ? "409 (already loaded)" : "200"));
            }
        Wire.AssertEach(results);
    }

    [Fact]
    public async Task Admin_routes_refuse_a_foreign_host_with_403()
    {
        var results = new List<(string, Reply, bool, string)>();
        var registered = new List<string>();
        foreach (var (path, json) in AdminRoutes("adm-host"))
        {
            if (path == "/models/register") registered.Add(JsonDocument.Parse(json).RootElement.GetProperty("model_id").GetString()!);
            var reply = await Wire.Json(Http, path, json, ("Host", "evil.example"));
            results.Add(($"POST {path} Host: evil.example", reply, reply.Status == 403, "403"));
        }
        Wire.AssertEach(results);
        Assert.DoesNotContain(registered[0], await ModelIds());
    }

    [Fact]
    public async Task Admin_routes_accept_a_localhost_host()
    {
        var results = new List<(string, Reply, bool, string)>();
        foreach (var (path, json) in AdminRoutes("adm-host-ok"))
        {
            var reply = await Wire.Json(Http, path, json, ("Host", $"localhost:{Port}"));
            bool ok = path == "/plugins/register" ? reply.Status == 409 : reply.Status == 200;
            results.Add(($"POST {path} Host: localhost:{Port}", reply, ok, path == "/plugins/register" ? "409 (already loaded)" : "200"));
        }
        Wire.AssertEach(results);
    }

    [Fact]
    public async Task Inference_routes_are_not_subject_to_the_admin_rules()
    {
        var (x, _) = Wire.MlpReference();
        var header = """{"inputs":[{"name":"input","shape":[3,16],"datatype":"FP32","parameters":{"binary_data_size":192}}]}""";
        var h = Wire.Utf8(header);
        var results = new List<(string, Reply, bool, string)>();
        var binary = await Wire.Send(Http, Wire.Post("/v2/models/mlp/infer", [.. h, .. x.SelectMany(BitConverter.GetBytes)], "application/octet-stream",
            ("Inference-Header-Content-Length", h.Length.ToString()), ("Origin", "http://evil.example")), "binary infer");
        results.Add(("KServe binary, application/octet-stream, Origin: http://evil.example", binary, binary.Status == 200, "200"));
        var json = $$"""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[{{MlpRow}}]}]}""";
        var plain = await Wire.Send(Http, Wire.Post("/v2/models/mlp/infer", Wire.Utf8(json), "text/plain"), "json infer text/plain");
        results.Add(("KServe JSON sent as text/plain", plain, plain.Status == 200, "200"));
        var mlos = await Wire.Send(Http, Wire.Post("/models/mlp/inference", Wire.Utf8($$"""{"input":[[{{MlpRow}}]]}"""), null, ("Origin", "http://evil.example")), "mlos infer");
        results.Add(("MLOS inference without Content-Type, Origin: http://evil.example", mlos, mlos.Status == 200, "200"));
        Wire.AssertEach(results);
    }

    /// <summary>A fresh server (the Python bridge is process-wide), the bridge registered with <paramref name="config"/>.</summary>
    private static async Task<Reply> RegisterBridge(object config)
    {
        var root = Directory.CreateTempSubdirectory("mlos-hostile-py-").FullName;
        try
        {
            using var server = new ServerProcess(root);
            var body = JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["endpoint"] = "file://" + Path.Combine(BuildTree.PluginDir, "libmlos_python_plugin.so"),
                ["config"] = config,
            });
            return await Wire.Json(server.Client, "/plugins/register", body);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task Python_bridge_refuses_a_module_path_outside_the_plugin_folders()
    {
        var dir = Directory.CreateTempSubdirectory("mlos-hostile-evil-").FullName;
        var marker = Path.Combine(dir, "evil.marker");
        File.WriteAllText(Path.Combine(dir, "evil.py"), $"""
            open({JsonSerializer.Serialize(marker)}, "w").write("evil.py was imported")

            class Evil:
                def initialize(self, config):
                    return 0
            """);
        try
        {
            var reply = await RegisterBridge(new Dictionary<string, string> { ["path"] = dir, ["module"] = "evil", ["class"] = "Evil" });
            bool imported = File.Exists(marker);
            Assert.True(reply.Status == 400 && !imported,
                $"want 400 and evil.py not imported; got {reply}, and evil.py {(imported ? "WAS imported (marker written)" : "was not imported")}");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task Python_bridge_refuses_a_libpython_outside_the_plugin_folders()
    {
        var dir = Directory.CreateTempSubdirectory("mlos-hostile-libpython-").FullName;
        var marker = Path.Combine(dir, "constructor.marker");
        var source = Path.Combine(dir, "evil.c");
        var library = Path.Combine(dir, "libevilpython.so");
        File.WriteAllText(source, $$"""
            #include <stdio.h>
            __attribute__((constructor)) static void evil(void)
            {
                FILE *f = fopen({{JsonSerializer.Serialize(marker)}}, "w");
                if (f) { fputs("constructor ran", f); fclose(f); }
            }
            """);
        try
        {
            var gcc = new ProcessStartInfo("gcc", ["-shared", "-fPIC", "-o", library, source]) { RedirectStandardError = true };
            using (var p = Process.Start(gcc)!)
            {
                var error = await p.StandardError.ReadToEndAsync();
                await p.WaitForExitAsync();
                Assert.True(p.ExitCode == 0 && File.Exists(library), $"gcc failed: {error}");
            }
            var reply = await RegisterBridge(new Dictionary<string, string> { ["libpython"] = library });
            bool ran = File.Exists(marker);
            Assert.True(reply.Status == 400 && !ran,
                $"want 400 and the library not loaded; got {reply}, and its constructor {(ran ? "RAN (marker written)" : "did not run")}");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    // ---- 4. Client mistakes are 400 ----------------------------------------------------------

    [Fact]
    public async Task Kserve_json_input_name_of_300_escaped_characters_is_400()
    {
        var name = string.Concat(Enumerable.Repeat(@"\u0061", 300));
        var reply = await Wire.Json(Http, "/v2/models/mlp/infer",
            $$"""{"inputs":[{"name":"{{name}}","shape":[1,16],"datatype":"FP32","data":[{{MlpRow}}]}]}""");
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
    }

    [Fact]
    public async Task Kserve_json_shape_whose_product_overflows_int64_is_400()
    {
        var results = new List<(string, Reply, bool, string)>();
        foreach (var data in new[] { MlpRow, "" })
        {
            var reply = await Wire.Json(Http, "/v2/models/mlp/infer",
                $$"""{"inputs":[{"name":"input","shape":[1152921504606846976,16],"datatype":"FP32","data":[{{data}}]}]}""");
            results.Add(($"shape [2^60,16] with {(data == "" ? 0 : 16)} values", reply, reply.Status == 400, "400"));
        }
        Wire.AssertEach(results);
    }

    [Fact]
    public async Task Kserve_binary_shape_whose_product_overflows_int64_is_400()
    {
        var results = new List<(string, Reply, bool, string)>();
        foreach (var size in new[] { 64, 0 })
        {
            var reply = await Wire.Binary(Http, "/v2/models/mlp/infer",
                $$$"""{"inputs":[{"name":"input","shape":[1152921504606846976,16],"datatype":"FP32","parameters":{"binary_data_size":{{{size}}}}}]}""", new byte[size]);
            results.Add(($"shape [2^60,16] with binary_data_size {size}", reply, reply.Status == 400, "400"));
        }
        Wire.AssertEach(results);
    }

    private static byte[] Bytes(string before, byte[] inside, string after) => [.. Wire.Utf8(before), .. inside, .. Wire.Utf8(after)];

    private static readonly byte[] InvalidUtf8 = [(byte)'a', 0xFF, 0xFE, 0xC0, 0x80, (byte)'b'];

    [Fact]
    public async Task Kserve_json_bytes_with_invalid_utf8_is_400()
    {
        var body = Bytes("{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"", InvalidUtf8, "\"]}]}");
        var reply = await Wire.Send(Http, Wire.Post("/v2/models/strings/infer", body, "application/json"), "invalid UTF-8 in BYTES");
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
    }

    [Fact]
    public async Task Kserve_json_bytes_with_a_lone_surrogate_is_400()
    {
        var reply = await Wire.Json(Http, "/v2/models/strings/infer", """{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["\ud800"]}]}""");
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
    }

    [Fact]
    public async Task Mlos_route_input_with_a_lone_surrogate_is_400()
    {
        var reply = await Wire.Json(Http, "/models/mlp/inference", """{"input": "\ud800"}""");
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
    }

    [Fact]
    public async Task Mlos_route_input_with_invalid_utf8_is_400()
    {
        var reply = await Wire.Send(Http, Wire.Post("/models/mlp/inference", Bytes("{\"input\": \"", InvalidUtf8, "\"}"), "application/json"), "invalid UTF-8 on the MLOS route");
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
    }

    [Fact]
    public async Task Mlos_route_body_cut_off_mid_json_is_400_not_raw_bytes()
    {
        // 64 bytes of a named-arrays body, cut mid-array: as raw bytes it would be a valid [1,16] FP32 tensor.
        var body = "{\"input\":[[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9,1.0,1.1,1.2,1.3,1.4,1.5,1";
        body = body[..64];
        var reply = await Wire.Send(Http, Wire.Post("/models/mlp/inference", Encoding.ASCII.GetBytes(body), "application/json"), "cut-off MLOS body");
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
    }

    [Fact]
    public async Task Dot_segments_cannot_make_one_model_answer_for_another()
    {
        var json = """{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}]}""";
        // Raw bytes on the wire: HttpClient would normalise the dot segments itself.
        var request = Encoding.ASCII.GetBytes(
            $"POST /v2/models/mlp/%2E%2E/strings/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {json.Length}\r\nConnection: close\r\n\r\n{json}");
        var reply = await Wire.Raw(Port, request, "dot segments in a model path");
        Assert.True(reply.Status is 400 or 404, $"want 400/404, got {reply}");
        Assert.DoesNotContain("\"model_name\":\"mlp\"", reply.Text);
        // Routing ignores case, and so does the MLOS route's id.
        var mlos = await Wire.Json(Http, "/Models/mlp/Inference", """{"input":[[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]]}""");
        Assert.True(mlos.Status == 200, $"want 200, got {mlos}");
    }

    [Fact]
    public async Task Inputs_given_twice_are_400_never_a_read_of_the_first_lists_memory()
    {
        // The second list's binary input took the first one's slot, which still pointed at its
        // decoded JSON: the plugin read past it (a crash with 32 MB, other requests' bytes with less).
        var header = """{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]}],"inputs":[{"name":"input","shape":[64,16],"datatype":"FP32","parameters":{"binary_data_size":4096}}]}""";
        var reply = await Wire.Binary(Http, "/v2/models/mlp/infer", header, new byte[4096]);
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
        Assert.Contains("given twice", reply.Text);
    }

    [Fact]
    public async Task Bytes_after_the_json_header_are_400()
    {
        var good = """{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}]}""";
        foreach (var tail in new[] { "garbage", "{}" })
        {
            var reply = await Wire.Json(Http, "/v2/models/mlp/infer", good + tail);
            Assert.True(reply.Status == 400, $"{tail}: want 400, got {reply}");
        }
    }

    [Fact]
    public async Task Nul_characters_in_names_and_paths_are_400()
    {
        var name = await Wire.Json(Http, "/v2/models/mlp/infer",
            """{"inputs":[{"name":"input\u0000x","shape":[1,16],"datatype":"FP32","data":[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}]}""");
        Assert.True(name.Status == 400, $"want 400, got {name}");
        var model = await Wire.Json(Http, "/models/register", """{"model_id":"nul","path":"mlp.onnx\u0000/../x.onnx"}""");
        Assert.True(model.Status == 400, $"want 400, got {model}");
        var plugin = await Wire.Json(Http, "/plugins/register", $$"""{"endpoint":"file://{{Path.Combine(BuildTree.PluginDir, "libmlos_echo_plugin.so")}}\u0000x"}""");
        Assert.True(plugin.Status == 400, $"want 400, got {plugin}");
    }

    [Fact]
    public async Task An_input_an_onnx_operator_refuses_is_400()
    {
        var reply = await Wire.Json(Http, "/v2/models/strings/infer", """{"inputs":[{"name":"text","shape":[0],"datatype":"BYTES","data":[]}]}""");
        Assert.True(reply.Status == 400, $"want 400, got {reply}");
    }

    [Fact]
    public async Task Native_backtraces_and_addresses_stay_in_the_log()
    {
        // libtorch refuses an ONNX file with its C++ backtrace: frames, library paths, addresses.
        var reply = await Wire.Json(Http, "/models/register", """{"model_id":"torch-on-onnx","plugin_id":"torchsharp","path":"mlp.onnx"}""");
        Assert.True(reply.Status is >= 400 and < 500, $"want 4xx, got {reply}");
        Assert.DoesNotMatch(@"0x[0-9a-fA-F]{6,}|frame #\d|Exception raised from|\.so\b", reply.Text);
    }

    [Fact]
    public async Task A_chunk_size_of_FFFFFFFFFF_is_4xx_and_the_server_keeps_serving()
    {
        var results = new List<(string, Reply, bool, string)>();
        foreach (var path in new[] { "/v2/models/mlp/infer", "/models/mlp/inference", "/models/register" })
        {
            var request = Encoding.ASCII.GetBytes(
                $"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
                "FFFFFFFFFF\r\n{\"inputs\":[]}\r\n0\r\n\r\n");
            var reply = await Wire.Raw(Port, request, $"chunked {path}");
            results.Add(($"POST {path}, chunk size FFFFFFFFFF", reply, reply.Status is >= 400 and < 500, "4xx"));
        }
        Wire.AssertEach(results);
        await Wire.AssertMlpReference(Http);
    }

    // ---- 5. Model ids are URL-decoded once ---------------------------------------------------

    [Fact]
    public async Task HttpClient_sends_percent_25_as_it_is()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}") };
        var sent = client.PostAsync("/v2/models/a%2540b/infer", new ByteArrayContent([]));
        using var socket = await listener.AcceptTcpClientAsync();
        var stream = socket.GetStream();
        var received = new MemoryStream();
        var buffer = new byte[4096];
        while (received.ToArray().AsSpan().IndexOf("\r\n\r\n"u8) < 0)
        {
            int n = await stream.ReadAsync(buffer);
            if (n == 0) break;
            received.Write(buffer, 0, n);
        }
        await stream.WriteAsync("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"u8.ToArray());
        using var answer = await sent;
        var line = Encoding.ASCII.GetString(received.ToArray()).Split("\r\n")[0];
        Assert.Equal("POST /v2/models/a%2540b/infer HTTP/1.1", line);
    }

    private async Task AssertAnsweredBy(string kind, Func<string, Task<Reply>> send, string property)
    {
        var results = new List<(string, Reply, bool, string)>();
        foreach (var (path, model) in new[] { ("a%2540b", "a%40b"), ("a%40b", "a@b") })
        {
            var reply = await send(path);
            string? got = reply.Status == 200 && reply.Json is { ValueKind: JsonValueKind.Object } j && j.TryGetProperty(property, out var p) ? p.GetString() : null;
            results.Add(($"{kind} {path}", reply, got == model, $"200 with {property} '{model}'"));
        }
        Wire.AssertEach(results);
    }

    [Fact]
    public Task Kserve_infer_decodes_the_model_id_once() => AssertAnsweredBy("POST /v2/models/{m}/infer",
        m => Wire.Json(Http, $"/v2/models/{m}/infer", $$"""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[{{MlpRow}}]}]}"""), "model_name");

    [Fact]
    public Task Mlos_inference_decodes_the_model_id_once() => AssertAnsweredBy("POST /models/{m}/inference",
        m => Wire.Json(Http, $"/models/{m}/inference", $$"""{"input":[[{{MlpRow}}]]}"""), "model_id");

    [Fact]
    public Task Kserve_metadata_decodes_the_model_id_once() => AssertAnsweredBy("GET /v2/models/{m}",
        m => Wire.Send(Http, new HttpRequestMessage(HttpMethod.Get, $"/v2/models/{m}"), $"GET /v2/models/{m}"), "name");

    // ---- 6. A seeded mutation corpus ---------------------------------------------------------

    [Fact]
    public async Task A_seeded_mutation_corpus_gets_json_answers_below_500()
    {
        var corpus = new Corpus(new Random(20261201));
        var requests = corpus.Build(mlos: 150, json: 150, binary: 150, register: 100);
        var byRoute = new SortedDictionary<string, SortedDictionary<int, int>>(StringComparer.Ordinal);
        var violations = new List<string>();
        var clock = Stopwatch.StartNew();
        foreach (var r in requests)
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            Reply reply;
            try
            {
                reply = await Wire.Send(Http, Wire.Post(r.Path, r.Body, r.ContentType, r.Headers), $"corpus #{r.Index} {r.Route}", cancel.Token);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                violations.Add($"#{r.Index} {r.Route} [{r.Mutations}]: {e.GetType().Name}: {e.Message}; body {r.Preview}");
                Count(byRoute, r.Route, -1);
                continue;
            }
            Count(byRoute, r.Route, reply.Status);
            if (reply.Status >= 500 && reply.Status != 503)
                violations.Add($"#{r.Index} {r.Route} [{r.Mutations}]: {reply}; body {r.Preview}");
            else if (reply.Json is null)
                violations.Add($"#{r.Index} {r.Route} [{r.Mutations}]: answer is not JSON: {reply}; body {r.Preview}");
        }
        output.WriteLine($"{requests.Count} requests in {clock.Elapsed.TotalSeconds:F1} s (status -1: no answer)");
        foreach (var (route, codes) in byRoute)
            output.WriteLine($"  {route,-14} {codes.Values.Sum(),4}: " + string.Join(", ", codes.Select(c => $"{c.Key}×{c.Value}")));
        var total = new SortedDictionary<int, int>();
        foreach (var codes in byRoute.Values)
            foreach (var (code, n) in codes) total[code] = total.GetValueOrDefault(code) + n;
        output.WriteLine("  all            " + string.Join(", ", total.Select(c => $"{c.Key}×{c.Value}")));
        foreach (var v in violations) output.WriteLine("VIOLATION " + v);

        Assert.True(requests.Count >= 500, $"only {requests.Count} requests");
        Assert.True(violations.Count == 0, $"{violations.Count} of {requests.Count} requests broke the rule:\n" + string.Join("\n", violations.Take(25)));
        await Wire.AssertMlpReference(Http);
    }

    private static void Count(SortedDictionary<string, SortedDictionary<int, int>> counts, string route, int status)
    {
        if (!counts.TryGetValue(route, out var codes)) counts[route] = codes = [];
        codes[status] = codes.GetValueOrDefault(status) + 1;
    }

    // ---- 2. 5xx bodies (runs last: see LeakCheckRunsLast) -------------------------------------

    [Fact]
    public async Task Server_errors_never_show_exception_types_or_source_paths()
    {
        // Its own provocations, so the rule is checked even when this test runs alone; then
        // every 5xx answer any test of this class got.
        var name = string.Concat(Enumerable.Repeat(@"\u0061", 300));
        await Wire.Json(Http, "/v2/models/mlp/infer", $$"""{"inputs":[{"name":"{{name}}","shape":[1,16],"datatype":"FP32","data":[{{MlpRow}}]}]}""");
        await Wire.Json(Http, "/v2/models/strings/infer", """{"inputs":[{"name":"text","shape":[1],"datatype":"BYTES","data":["\ud800"]}]}""");
        await Wire.Json(Http, "/models/mlp/inference", """{"input": "\ud800"}""");
        await Wire.Send(Http, Wire.Post("/models/mlp/inference", Bytes("{\"input\": \"", InvalidUtf8, "\"}"), "application/json"), "invalid UTF-8 on the MLOS route");
        await Wire.Binary(Http, "/v2/models/mlp/infer",
            """{"inputs":[{"name":"input","shape":[1152921504606846976,16],"datatype":"FP32","parameters":{"binary_data_size":0}}]}""", []);
        await Wire.Binary(Http, "/v2/models/strings/infer",
            """{"inputs":[{"name":"text","shape":[1099511627776],"datatype":"BYTES","parameters":{"binary_data_size":4}}]}""", [1, 0, 0, 0]);
        await Wire.Raw(Port, Encoding.ASCII.GetBytes(
            $"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: 127.0.0.1:{Port}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nFFFFFFFFFF\r\n{{}}\r\n0\r\n\r\n"), "chunked");

        var seen = Wire.ServerErrors.ToArray();
        output.WriteLine($"{seen.Length} answers of 500 or more in this suite so far");
        var leaks = seen.Select(e => (e.What, e.Reply, Leak: Wire.Leak(e.Reply))).Where(e => e.Leak is not null)
            .Select(e => $"  {e.What}: {e.Leak} in {e.Reply}").Distinct().ToArray();
        foreach (var l in leaks) output.WriteLine(l);
        Assert.True(leaks.Length == 0, $"{leaks.Length} of {seen.Length} server errors show internals:\n" + string.Join("\n", leaks.Take(25)));
    }
}

/// <summary>A request of the corpus and what was done to it.</summary>
internal sealed record CorpusRequest(int Index, string Route, string Path, byte[] Body, string ContentType, (string, string)[] Headers, string Mutations)
{
    /// <summary>The body's start, bytes outside printable ASCII as \xNN (invalid UTF-8 stays visible).</summary>
    public string Preview => Printable(Body, 200);

    public static string Printable(byte[] bytes, int n) =>
        string.Concat(bytes.Take(n).Select(b => b is >= 0x20 and < 0x7F ? ((char)b).ToString() : $"\\x{b:X2}"))
        + (bytes.Length > n ? $"…({bytes.Length} bytes)" : "");
}

/// <summary>
/// Valid requests for each route, mutated by a seeded <see cref="Random"/>: the same corpus on
/// every run. Tokens JSON cannot hold (NaN, 1e999, deep nesting, duplicate keys) are written as
/// placeholders in the tree and swapped into the text after serialization.
/// </summary>
internal sealed class Corpus(Random rng)
{
    private readonly List<(byte[] Placeholder, byte[] Raw)> _raw = [];
    private readonly List<string> _done = [];
    private int _index;

    private static readonly string[] Numbers =
    [
        "-1", "-16", "0", "-0", "1.5", "16.0", "1e3", "1e308", "1e999", "-1e999", "4294967296", "2147483648",
        "9223372036854775807", "9223372036854775808", "-9223372036854775808", "18446744073709551616",
        "1152921504606846976", "99999999999999999999999999999", "0.0000001", "1E+2",
    ];
    private static readonly string[] NanTokens = ["NaN", "Infinity", "-Infinity", "nan", "inf", "+1", "01", ".5", "1.", "0x10", "1e", "--1"];
    private static readonly string[] Datatypes = ["FP33", "fp32", "", "BYTES", "STRING", "FP16", "BF16", "BOOL", "INT8", "UINT64", "FP64", "INT64", "F\u00fc32", "FP32\u0000", "TYPE_FP32"];
    private static readonly string[] Shapes =
    [
        "[]", "[16]", "[1,1,16]", "[1,16,1,1,1,1,1,1,1,1]", "[0,16]", "[-1,16]", "[1,16.0]", "[1.5,16]", "[2147483648,16]",
        "[4294967296,4294967296]", "[1152921504606846976,16]", "[3074457345618258603,3,2]", "[1099511627776]", "[9223372036854775807]", "[1,-16]", "[\"1\",16]", "[null]", "[[1],[16]]", "{}", "[1e400]", "[0]",
    ];
    private static readonly string[] HeaderLengths = ["-1", "0", "abc", "", "99999999999", " 12", "1e3", "2147483648", "+5", "0x10"];

    public List<CorpusRequest> Build(int mlos, int json, int binary, int register)
    {
        var all = new List<CorpusRequest>();
        for (int i = 0; i < mlos; i++) all.Add(Mlos());
        for (int i = 0; i < json; i++) all.Add(KServeJson());
        for (int i = 0; i < binary; i++) all.Add(KServeBinary());
        for (int i = 0; i < register; i++) all.Add(Register());
        return all;
    }

    private static string Row(Random r) => "[" + string.Join(",", Enumerable.Range(0, 16).Select(_ => Math.Round(r.NextDouble() * 4 - 2, 3))) + "]";

    private CorpusRequest Mlos()
    {
        var (path, seed) = rng.Next(3) switch
        {
            0 => ("/models/mlp/inference", $$"""{"input":[{{Row(rng)}}]}"""),
            1 => ("/models/mlp/inference", $$"""{"input":[{{Row(rng)}},{{Row(rng)}}]}"""),
            _ => ("/models/strings/inference", """{"input":"hello"}"""),
        };
        return Json("mlos", path, seed);
    }

    private CorpusRequest KServeJson()
    {
        var seed = rng.Next(3) switch
        {
            0 => ("mlp", $$"""{"id":"r1","inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":{{Row(rng)}}}]}"""),
            1 => ("mlp", $$$"""{"inputs":[{"name":"input","shape":[2,16],"datatype":"FP32","data":[{{{Row(rng)}}},{{{Row(rng)}}}]}],"outputs":[{"name":"output"}],"parameters":{"binary_data_output":false}}"""),
            _ => ("strings", """{"inputs":[{"name":"text","shape":[2],"datatype":"BYTES","data":["hello","World 42"]}],"outputs":[{"name":"upper"}]}"""),
        };
        return Json("kserve-json", $"/v2/models/{seed.Item1}/infer", seed.Item2);
    }

    private CorpusRequest Register() => Json("register", "/models/register", rng.Next(4) switch
    {
        0 => $$"""{"model_id":"fz-{{_index}}","path":"mlp.onnx"}""",
        1 => $$$"""{"model_id":"fz-{{{_index}}}","name":"fuzzed","path":"strings.onnx","config":{"intra_op_threads":1,"graph_optimization_level":"basic"}}""",
        2 => $$$"""{"model_id":"fz-{{{_index}}}","path":"mlp.onnx","dynamic_batching":{"max_batch_size":4,"max_queue_delay_us":100}}""",
        _ => $$"""{"model_id":"fz-{{_index}}","plugin_id":"onnx-runtime","model_path":"mlp.onnx","framework":"onnx"}""",
    });

    private CorpusRequest Json(string route, string path, string seed)
    {
        _done.Clear();
        var body = MutateText(seed, route == "register" ? rng.Next(1, 3) : rng.Next(1, 4));
        if (rng.Next(5) == 0) body = MutateBytes(body);
        return new CorpusRequest(_index++, route, path, body, "application/json", [], string.Join(", ", _done));
    }

    private CorpusRequest KServeBinary()
    {
        _done.Clear();
        string model, json;
        byte[] tensors;
        if (rng.Next(2) == 0)
        {
            int rows = rng.Next(1, 4);
            tensors = Enumerable.Range(0, rows * 16).SelectMany(_ => BitConverter.GetBytes((float)(rng.NextDouble() * 4 - 2))).ToArray();
            model = "mlp";
            json = $$$"""{"inputs":[{"name":"input","shape":[{{{rows}}},16],"datatype":"FP32","parameters":{"binary_data_size":{{{tensors.Length}}}}}],"parameters":{"binary_data_output":true}}""";
        }
        else
        {
            var words = new[] { "hello", "SMI plugins", "" }.Take(rng.Next(1, 4)).ToArray();
            tensors = words.SelectMany(w => BitConverter.GetBytes((uint)Encoding.UTF8.GetByteCount(w)).Concat(Encoding.UTF8.GetBytes(w))).ToArray();
            model = "strings";
            json = $$$"""{"inputs":[{"name":"text","shape":[{{{words.Length}}}],"datatype":"BYTES","parameters":{"binary_data_size":{{{tensors.Length}}}}}],"outputs":[{"name":"upper","parameters":{"binary_data":true}}]}""";
        }
        var mutatedHeader = rng.Next(4) == 0 ? Wire.Utf8(json) : MutateText(json, rng.Next(1, 3));
        if (_done.Count == 0) _done.Add("header intact");
        switch (rng.Next(8))
        {
            case 0: tensors = tensors[..rng.Next(tensors.Length + 1)]; _done.Add("tensor bytes cut"); break;
            case 1: tensors = [.. tensors, .. Enumerable.Range(0, rng.Next(1, 9)).Select(_ => (byte)rng.Next(256))]; _done.Add("tensor bytes added"); break;
            case 2: tensors = Flip(tensors); break;
        }
        byte[] body = [.. mutatedHeader, .. tensors];
        string? headerLength = mutatedHeader.Length.ToString();
        switch (rng.Next(10))
        {
            case 0: headerLength = HeaderLengths[rng.Next(HeaderLengths.Length)]; _done.Add($"header length '{headerLength}'"); break;
            case 1: headerLength = (mutatedHeader.Length + rng.Next(-3, 4)).ToString(); _done.Add($"header length {headerLength} of {mutatedHeader.Length}"); break;
            case 2: headerLength = body.Length.ToString(); _done.Add("header length = body length"); break;
            case 3: headerLength = (body.Length + 1).ToString(); _done.Add("header length past the body"); break;
            case 4: headerLength = null; _done.Add("no header length"); break;
        }
        if (rng.Next(10) == 0) body = MutateBytes(body);
        (string, string)[] headers = headerLength is null ? [] : [("Inference-Header-Content-Length", headerLength)];
        return new CorpusRequest(_index++, "kserve-binary", $"/v2/models/{model}/infer", body, "application/octet-stream", headers, string.Join(", ", _done));
    }

    // ---- mutations ------------------------------------------------------------------------------

    private byte[] MutateText(string seed, int count)
    {
        if (rng.Next(40) == 0) { _done.Add("empty body"); return []; }
        if (rng.Next(30) == 0)
        {
            var other = new[] { "[1,2]", "\"text\"", "null", "42", "true", "{}", "[]", " ", "{\"\":{}}" }[rng.Next(9)];
            _done.Add($"root {other}");
            return Wire.Utf8(other);
        }
        _raw.Clear();
        var root = JsonNode.Parse(seed)!;
        for (int i = 0; i < count; i++) Mutate(root);
        var bytes = Wire.Utf8(root.ToJsonString());
        foreach (var (placeholder, raw) in _raw) bytes = Replace(bytes, placeholder, raw);
        return bytes;
    }

    /// <summary>A placeholder string whose quoted form is replaced by <paramref name="raw"/> after serialization.</summary>
    private string Raw(byte[] raw)
    {
        var p = $"@@raw{_raw.Count}@@";
        _raw.Add((Wire.Utf8($"\"{p}\""), raw));
        return p;
    }

    private string Raw(string raw) => Raw(Wire.Utf8(raw));

    private static byte[] Replace(byte[] bytes, byte[] what, byte[] with)
    {
        var result = new List<byte>(bytes.Length + with.Length);
        int at = 0;
        for (int i; (i = bytes.AsSpan(at).IndexOf(what)) >= 0; at += i + what.Length)
            result.AddRange([.. bytes.AsSpan(at, i), .. with]);
        result.AddRange(bytes.AsSpan(at).ToArray());
        return [.. result];
    }

    /// <summary>A JSON string token (quotes included) that is not valid text or is an odd name.</summary>
    private byte[] BadText() => rng.Next(10) switch
    {
        0 => [(byte)'"', (byte)'a', 0xFF, 0xFE, (byte)'"'],
        1 => [(byte)'"', 0xC0, 0x80, (byte)'"'],
        2 => [(byte)'"', 0xED, 0xA0, 0x80, (byte)'"'], // a surrogate encoded as UTF-8
        3 => [(byte)'"', (byte)'x', 0xE2, 0x82, (byte)'"'], // a cut sequence
        4 => Wire.Utf8("\"\\ud800\""),
        5 => Wire.Utf8("\"a\\udfffb\""),
        6 => Wire.Utf8("\"\\ud800\\u0041\""),
        7 => Wire.Utf8("\"\\u0000\""),
        8 => Wire.Utf8("\"" + string.Concat(Enumerable.Repeat("\\u0061", Pick(new[] { 128, 255, 256, 300, 5000 }))) + "\""),
        _ => Wire.Utf8("\"" + string.Concat(Enumerable.Repeat("\\u00e9", Pick(new[] { 100, 129, 300 }))) + "\""),
    };

    private sealed record Slot(JsonNode Parent, string? Key, int Index, JsonNode? Value)
    {
        public void Set(JsonNode? v)
        {
            if (Key is not null) ((JsonObject)Parent)[Key] = v;
            else ((JsonArray)Parent)[Index] = v;
        }

        public string Where => Key ?? $"[{Index}]";
    }

    private static List<Slot> Slots(JsonNode node)
    {
        var slots = new List<Slot>();
        void Walk(JsonNode n)
        {
            if (n is JsonObject o)
                foreach (var (k, v) in o.ToList())
                {
                    slots.Add(new Slot(o, k, -1, v));
                    if (v is not null) Walk(v);
                }
            else if (n is JsonArray a)
                for (int i = 0; i < a.Count; i++)
                {
                    slots.Add(new Slot(a, null, i, a[i]));
                    if (a[i] is { } v) Walk(v);
                }
        }
        Walk(node);
        return slots;
    }

    private T Pick<T>(IReadOnlyList<T> items) => items[rng.Next(items.Count)];

    private JsonNode? WrongType() => rng.Next(9) switch
    {
        0 => JsonValue.Create("str"),
        1 => JsonValue.Create(123),
        2 => JsonValue.Create(-1),
        3 => JsonValue.Create(true),
        4 => null,
        5 => new JsonArray(),
        6 => new JsonObject(),
        7 => new JsonArray(1, "a", null),
        _ => new JsonObject { ["a"] = 1 },
    };

    private string Nesting()
    {
        int depth = Pick(new[] { 65, 200, 1000, 100_000 });
        return rng.Next(2) == 0 ? new string('[', depth) + new string(']', depth) : string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);
    }

    private void Mutate(JsonNode root)
    {
        var slots = Slots(root);
        if (slots.Count == 0) return;
        var numbers = slots.Where(s => s.Value is JsonValue v && v.GetValueKind() == JsonValueKind.Number).ToList();
        var sized = slots.Where(s => s.Key is "binary_data_size" || (s.Parent.Parent is JsonObject p && s.Parent == p["shape"])).ToList();
        var strings = slots.Where(s => s.Value is JsonValue v && v.GetValueKind() == JsonValueKind.String).ToList();
        var objects = slots.Where(s => s.Key is not null).ToList();
        // Semantic mutations weigh more than the ones any JSON parser refuses at once.
        int op = Pick(new[] { 0, 1, 2, 3, 3, 4, 5, 6, 7, 7, 8, 8, 9, 9, 10, 11, 12, 12, 13, 13 });
        switch (op)
        {
            case 0 when objects.Count > 0:
            {
                var s = Pick(objects);
                ((JsonObject)s.Parent).Remove(s.Key!);
                _done.Add($"removed '{s.Key}'");
                break;
            }
            case 1 when objects.Count > 0:
            {
                var s = Pick(objects);
                var dup = Raw(JsonSerializer.Serialize(s.Key));
                ((JsonObject)s.Parent)[dup] = rng.Next(2) == 0 ? s.Value?.DeepClone() : WrongType();
                _done.Add($"duplicated '{s.Key}'");
                break;
            }
            case 2:
            {
                var s = Pick(slots);
                var v = WrongType();
                s.Set(v);
                _done.Add($"'{s.Where}' as {v?.GetValueKind().ToString() ?? "null"}");
                break;
            }
            case 3 when numbers.Count > 0 || sized.Count > 0:
            {
                var s = sized.Count > 0 && rng.Next(3) > 0 ? Pick(sized) : Pick(numbers.Count > 0 ? numbers : sized);
                var n = Pick(Numbers);
                s.Set(JsonValue.Create(Raw(n)));
                _done.Add($"'{s.Where}' = {n}");
                break;
            }
            case 4:
            {
                var s = Pick(slots);
                s.Set(JsonValue.Create(Raw(Nesting())));
                _done.Add($"'{s.Where}' deeply nested");
                break;
            }
            case 5 when numbers.Count > 0:
            {
                var s = Pick(numbers);
                var t = Pick(NanTokens);
                s.Set(JsonValue.Create(Raw(t)));
                _done.Add($"'{s.Where}' = {t}");
                break;
            }
            case 6:
            {
                int length = Pick(new[] { 300, 5000, 100_000, 1_000_000 });
                if (strings.Count > 0 && rng.Next(3) > 0)
                {
                    var s = Pick(strings);
                    s.Set(JsonValue.Create(new string((char)('a' + rng.Next(26)), length)));
                    _done.Add($"'{s.Where}' {length} chars long");
                }
                else if (objects.Count > 0)
                {
                    var s = Pick(objects);
                    ((JsonObject)s.Parent)[new string('k', length)] = 1;
                    _done.Add($"a key {length} chars long");
                }
                break;
            }
            case 7:
            {
                var s = slots.Where(x => x.Key == "datatype").ToList();
                if (s.Count == 0) goto default;
                var d = Pick(Datatypes);
                Pick(s).Set(JsonValue.Create(d));
                _done.Add($"datatype '{d}'");
                break;
            }
            case 8:
            {
                var s = slots.Where(x => x.Key == "shape").ToList();
                if (s.Count == 0) goto default;
                var shape = Pick(Shapes);
                Pick(s).Set(JsonValue.Create(Raw(shape)));
                _done.Add($"shape {shape}");
                break;
            }
            case 9:
            {
                var s = slots.Where(x => x.Key == "binary_data_size").ToList();
                if (s.Count == 0) goto default;
                if (s[0].Value is not JsonValue value || !value.TryGetValue<long>(out var real)) goto default;
                var lie = Pick(new[] { real - 1, real + 1, 0, -1, real * 2, 1L << 31, long.MaxValue, real + 4 });
                Pick(s).Set(JsonValue.Create(lie));
                _done.Add($"binary_data_size {lie} (was {real})");
                break;
            }
            case 10:
            {
                var s = slots.Where(x => x.Key == "inputs" && x.Value is JsonArray { Count: > 0 }).ToList();
                if (s.Count == 0) goto default;
                var inputs = (JsonArray)s[0].Value!;
                inputs.Add(inputs[rng.Next(inputs.Count)]!.DeepClone());
                _done.Add("input given twice");
                break;
            }
            case 11 when root is JsonObject o:
            {
                var key = Pick(new[] { "inputs", "outputs", "parameters", "id", "model_id", "path", "config", "input", "unknown", "" });
                o[key] = WrongType();
                _done.Add($"top-level '{key}' replaced or added");
                break;
            }
            case 12:
            {
                // Bad text in a value or in a key.
                var bad = BadText();
                if (strings.Count > 0 && rng.Next(4) > 0)
                {
                    var s = Pick(strings);
                    s.Set(JsonValue.Create(Raw(bad)));
                    _done.Add($"'{s.Where}' = {CorpusRequest.Printable(bad, 40)}");
                }
                else if (objects.Count > 0)
                {
                    var s = Pick(objects);
                    ((JsonObject)s.Parent)[Raw(bad)] = s.Value?.DeepClone();
                    ((JsonObject)s.Parent).Remove(s.Key!);
                    _done.Add($"key '{s.Key}' renamed to {CorpusRequest.Printable(bad, 40)}");
                }
                break;
            }
            case 13:
            {
                var names = slots.Where(x => x.Key is "name" or "model_id" or "path" or "plugin_id" or "id").ToList();
                if (names.Count == 0) goto case 12;
                var bad = BadText();
                var s = Pick(names);
                s.Set(JsonValue.Create(Raw(bad)));
                _done.Add($"'{s.Key}' = {CorpusRequest.Printable(bad, 40)}");
                break;
            }
            default:
            {
                var s = Pick(slots);
                var t = Pick(NanTokens);
                s.Set(JsonValue.Create(Raw(t)));
                _done.Add($"'{s.Where}' = {t}");
                break;
            }
        }
    }

    private byte[] Flip(byte[] body)
    {
        if (body.Length == 0) return body;
        var copy = body.ToArray();
        int n = rng.Next(1, 9);
        for (int i = 0; i < n; i++) copy[rng.Next(copy.Length)] ^= (byte)rng.Next(1, 256);
        _done.Add($"{n} bytes flipped");
        return copy;
    }

    private byte[] MutateBytes(byte[] body)
    {
        switch (rng.Next(3))
        {
            case 0:
                return Flip(body);
            case 1:
            {
                int at = rng.Next(body.Length + 1);
                _done.Add($"cut at {at} of {body.Length}");
                return body[..at];
            }
            default:
            {
                int at = rng.Next(body.Length + 1);
                byte[] junk = Pick(new byte[][] { [0xFF, 0xFE], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0], [(byte)'"'], [(byte)'\\'], [(byte)'\\', (byte)'u', (byte)'d', (byte)'8'] });
                _done.Add($"{junk.Length} junk bytes at {at}");
                return [.. body[..at], .. junk, .. body[at..]];
            }
        }
    }
}
