using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>The server's limits, start-up, logging and shutdown, each on a server of its own.</summary>
public class ServerLifecycleTests
{
    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static string TempDir(string name) => Directory.CreateTempSubdirectory(name).FullName;

    [Fact]
    public async Task Registrations_past_max_models_are_refused_with_409()
    {
        var root = TempDir("mlos-cap-");
        File.WriteAllText(Path.Combine(root, "echo.bin"), "echo");
        try
        {
            using var server = new ServerProcess(root, "--max-models", "2");
            for (int i = 0; i < 2; i++)
            {
                var ok = await server.Client.PostAsync("/models/register", Json($$"""{"model_id":"m{{i}}","plugin_id":"csharp-echo","path":"echo.bin"}"""));
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            }
            var refused = await server.Client.PostAsync("/models/register", Json("""{"model_id":"m2","plugin_id":"csharp-echo","path":"echo.bin"}"""));
            Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
            Assert.Contains("2 models are registered", await refused.Content.ReadAsStringAsync());
            Assert.DoesNotContain("\"m2\"", await server.Client.GetStringAsync("/models"));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task The_server_is_live_but_not_ready_while_its_start_up_models_load()
    {
        // A repository model served by the hostile fixture plugin, whose register_model sleeps
        // 10 s (a window wide enough for a loaded machine): the server answers meanwhile, live but not ready, and ready once it has loaded.
        var repo = TempDir("mlos-slow-start-");
        Directory.CreateDirectory(Path.Combine(repo, "slow"));
        File.WriteAllText(Path.Combine(repo, "slow", "model.bin"), "x");
        File.WriteAllText(Path.Combine(repo, "slow", "config.json"),
            """{"plugin_id":"hostile","file":"model.bin","config":"register_sleep_ms=10000"}""");
        try
        {
            using var server = new ServerProcess(waitReady: false, repo, "--model-repository", repo,
                "--plugin-dir", Path.Combine(BuildTree.Dir, "c-tests", "plugins"));
            using var early = await server.Client.GetAsync("/v2/health/ready");
            Assert.Equal(HttpStatusCode.ServiceUnavailable, early.StatusCode);
            Assert.False(JsonDocument.Parse(await early.Content.ReadAsStringAsync()).RootElement.GetProperty("ready").GetBoolean());
            Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/v2/health/live")).StatusCode);
            // Admin routes wait for the start: a registration now could take a start-up model's id.
            using var register = await server.Client.PostAsync("/models/register", Json("""{"model_id":"slow","plugin_id":"csharp-echo","path":"slow/model.bin"}"""));
            Assert.Equal(HttpStatusCode.ServiceUnavailable, register.StatusCode);
            Assert.Contains("still loading its start-up models", await register.Content.ReadAsStringAsync());
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((await server.Client.GetAsync("/v2/health/ready")).StatusCode != HttpStatusCode.OK)
            {
                Assert.True(DateTime.UtcNow < deadline, "never ready: " + server.Output);
                await Task.Delay(20);
            }
            Assert.Contains("\"slow\"", await server.Client.GetStringAsync("/models"));
        }
        finally { Directory.Delete(repo, recursive: true); }
    }

    [Fact]
    public async Task The_start_up_scan_skips_a_plugin_link_that_leads_out_of_the_plugin_folders()
    {
        var root = TempDir("mlos-scan-models-");
        var plugins = TempDir("mlos-scan-plugins-");
        var outside = Path.Combine(BuildTree.Dir, "c-tests", "plugins", "libmlos_guide_plugin.so");
        try
        {
            // A copy inside the folder loads; the same file reached through a link does not.
            File.Copy(outside, Path.Combine(plugins, "libmlos_copy_plugin.so"));
            using (var copy = new ServerProcess(root, "--plugin-dir", plugins))
                Assert.Contains("\"id\":\"my-ml-plugin\"", await copy.Client.GetStringAsync("/plugins"));
            File.Delete(Path.Combine(plugins, "libmlos_copy_plugin.so"));
            File.CreateSymbolicLink(Path.Combine(plugins, "libmlos_link_plugin.so"), outside);
            // A loop of links names nothing: skipped like any bad plugin, not a failed start.
            File.CreateSymbolicLink(Path.Combine(plugins, "libmlos_loop_plugin.so"), Path.Combine(plugins, "libmlos_loop_plugin.so"));
            using var server = new ServerProcess(root, "--plugin-dir", plugins);
            Assert.DoesNotContain("\"id\":\"my-ml-plugin\"", await server.Client.GetStringAsync("/plugins"));
            Assert.Contains("libmlos_link_plugin.so: it links to a file outside the plugin folders", server.OutputOnce("libmlos_link_plugin.so: it links"));
            Assert.Contains("skipping " + Path.Combine(plugins, "libmlos_loop_plugin.so"), server.OutputOnce("skipping " + Path.Combine(plugins, "libmlos_loop_plugin.so")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
            Directory.Delete(plugins, recursive: true);
        }
    }

    [Fact]
    public async Task A_repository_folder_with_a_malformed_config_is_skipped_with_a_log_line()
    {
        var repo = TempDir("mlos-badrepo-");
        Directory.CreateDirectory(Path.Combine(repo, "mlp"));
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(repo, "mlp", "model.onnx"));
        foreach (var (name, config) in new[]
                 {
                     ("garbled", "{not json"), ("typed", """{"file": 3}"""),
                     ("rawbad", """{"config":"{bad"}"""), ("surrogate", """{"config":{"a":"\ud800"}}"""),
                 })
        {
            Directory.CreateDirectory(Path.Combine(repo, name));
            File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(repo, name, "model.onnx"));
            File.WriteAllText(Path.Combine(repo, name, "config.json"), config);
        }
        try
        {
            using var server = new ServerProcess(repo, "--model-repository", repo, "--model-control-mode", "explicit", "--load-model", "*");
            var index = JsonDocument.Parse(await (await server.Client.PostAsync("/v2/repository/index", null)).Content.ReadAsStringAsync())
                .RootElement.EnumerateArray().ToDictionary(e => e.GetProperty("name").GetString()!, e => e.GetProperty("state").GetString()!);
            Assert.Equal("READY", index["mlp"]);
            Assert.Equal("UNAVAILABLE", index["garbled"]);
            foreach (var bad in new[] { "garbled", "typed", "rawbad", "surrogate" })
            {
                Assert.Equal("UNAVAILABLE", index[bad]);
                Assert.Contains($"repository model '{bad}' not loaded", server.OutputOnce($"repository model '{bad}' not loaded"));
            }
            var register = await server.Client.PostAsync("/models/register",
                Json("""{"model_id":"s","path":"mlp/model.onnx","config":"{\"a\":\"\\ud800\"}"}"""));
            Assert.Equal(HttpStatusCode.BadRequest, register.StatusCode);
            var load = await server.Client.PostAsync("/v2/repository/models/garbled/load", Admin.Empty);
            Assert.Equal(HttpStatusCode.BadRequest, load.StatusCode);
            Assert.Contains("cannot be read", await load.Content.ReadAsStringAsync());
        }
        finally { Directory.Delete(repo, recursive: true); }
    }

    [Fact]
    public async Task A_port_in_use_is_one_line_and_exit_code_1()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var info = new ProcessStartInfo(BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core")), ["--http-port", port.ToString(), "--no-grpc"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var error = await p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(30000));
        Assert.Equal(1, p.ExitCode);
        Assert.Contains($"cannot listen on 127.0.0.1:{port}", error);
        Assert.Contains("already in use", error);
        Assert.DoesNotContain("   at ", error + await stdout);
    }

    [Fact]
    public async Task Onnx_runtime_keeps_no_telemetry_cache_and_no_device_id()
    {
        // ONNX Runtime's telemetry writes a device id and an event cache under $XDG_CACHE_HOME
        // (Microsoft/DeveloperTools/.onnxruntime) as its environment is made, for upload.
        var home = Directory.CreateTempSubdirectory("mlos-telemetry-").FullName;
        try
        {
            var free = new TcpListener(IPAddress.Loopback, 0);
            free.Start();
            int port = ((IPEndPoint)free.LocalEndpoint).Port;
            free.Stop();
            var info = new ProcessStartInfo(BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core")),
                ["--http-port", port.ToString(), "--no-grpc", "--model-root", BuildTree.Models("onnx"), "--plugin-dir", BuildTree.PluginDir, "--model", "mlp=mlp.onnx"])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            info.Environment["HOME"] = home;
            info.Environment["XDG_CACHE_HOME"] = Path.Combine(home, "cache");
            info.Environment.Remove(OnnxTelemetryVariable);
            using var p = Process.Start(info)!;
            var stderr = p.StandardError.ReadToEndAsync();
            try
            {
                // The model loads (its session made, ONNX Runtime's environment with it) before the server says it listens.
                string? line;
                while ((line = await p.StandardOutput.ReadLineAsync()) is not null && !line.Contains("listening on")) { }
                if (line is null) Assert.Fail($"the server ended before it listened: {await stderr}"); // stderr ends only with the server
                Assert.Contains("1 models", line);
            }
            finally
            {
                if (!p.HasExited) p.Kill();
                await p.WaitForExitAsync();
            }
            var written = Directory.EnumerateFileSystemEntries(home, "*", SearchOption.AllDirectories).ToList();
            Assert.True(written.Count == 0, $"written under HOME: {string.Join(", ", written)}; {await stderr}");
        }
        finally { Directory.Delete(home, recursive: true); }
    }

    private const string OnnxTelemetryVariable = "ORT_DISABLE_TELEMETRY";

    [Fact]
    public async Task Options_written_with_equals_work_and_no_admin_may_listen_beyond_loopback()
    {
        // As KServe's manifests write them: --option=VALUE, on every address, no token.
        var refused = Process.Start(new ProcessStartInfo(BuildTree.Require(Path.Combine(BuildTree.Dir, "mlos_core")), ["--host=0.0.0.0", "--no-grpc"])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        })!;
        var why = await refused.StandardError.ReadToEndAsync();
        Assert.True(refused.WaitForExit(30000));
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("without --admin-token or --no-admin", why);

        using var server = new ServerProcess(BuildTree.Models("onnx"), "--no-admin", "--host=0.0.0.0", "--model=mlp=mlp.onnx", "--log-level=warning");
        var input = string.Join(",", Enumerable.Repeat("0.5", 16));
        var infer = await server.Client.PostAsync("/v2/models/mlp/infer",
            new StringContent($$"""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[{{input}}]}]}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, infer.StatusCode);
        var unload = await server.Client.PostAsync("/v2/repository/models/mlp/unload", null);
        Assert.Equal(HttpStatusCode.Forbidden, unload.StatusCode);
        Assert.Contains("admin routes are off (--no-admin)", await unload.Content.ReadAsStringAsync());
        var register = await server.Client.PostAsync("/models/register", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Forbidden, register.StatusCode);
        Assert.True((await server.Client.GetAsync("/v2/models/mlp/ready")).IsSuccessStatusCode);
    }

    [Fact]
    public async Task Sigterm_lets_running_requests_finish_and_exits_within_the_shutdown_timeout()
    {
        var root = TempDir("mlos-term-");
        File.WriteAllText(Path.Combine(root, "slow.bin"), "slow");
        try
        {
            using var server = new ServerProcess(root, "--shutdown-timeout-s", "10");
            var reg = await server.Client.PostAsync("/models/register",
                Json("""{"model_id":"slow","plugin_id":"csharp-echo","path":"slow.bin","config":{"delay_us":3000000}}"""));
            Assert.Equal(HttpStatusCode.OK, reg.StatusCode);
            var running = server.Client.PostAsync("/models/slow/inference", Json("""{"input":"in flight"}"""));
            // Uploads that never finish: without a timeout, shutdown would wait for them.
            var uploads = Enumerable.Range(0, 8).Select(_ => SlowUpload(server.Port)).ToArray();
            await Task.Delay(1500); // the request is inside the plugin by then, the uploads are under way
            var clock = Stopwatch.StartNew();
            server.Terminate();
            var first = await running;
            Assert.Equal(HttpStatusCode.OK, first.StatusCode);
            Assert.Contains("in flight", await first.Content.ReadAsStringAsync());
            Assert.Equal(0, server.WaitForExit(TimeSpan.FromSeconds(20)));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10 + 5), $"exit took {clock.Elapsed}");
            foreach (var u in uploads) u.Dispose();
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    private static TcpClient SlowUpload(int port)
    {
        var client = new TcpClient("127.0.0.1", port);
        var head = $"POST /v2/models/slow/infer HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{{\"inputs\":";
        client.GetStream().Write(Encoding.ASCII.GetBytes(head));
        return client;
    }

    [Fact]
    public async Task Connections_past_max_connections_are_closed_and_the_server_keeps_serving()
    {
        var root = TempDir("mlos-conn-");
        try
        {
            using var server = new ServerProcess(root, "--max-connections", "2");
            // ServerProcess's client has let its connection go idle; two raw ones take the places.
            server.Client.Dispose();
            await Task.Delay(200);
            using var first = new TcpClient("127.0.0.1", server.Port);
            using var second = new TcpClient("127.0.0.1", server.Port);
            await Task.Delay(200);
            Assert.Null(await TryHealth(server.Port));
            first.Dispose();
            second.Dispose();
            // The places come back once the server has seen each close: a loaded machine takes a while.
            var deadline = DateTime.UtcNow.AddSeconds(10);
            int? health;
            while ((health = await TryHealth(server.Port)) != 200 && DateTime.UtcNow < deadline) await Task.Delay(100);
            Assert.Equal(200, health);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    /// <summary>The status of a GET /health on a fresh connection, or null when the server closes it unanswered.</summary>
    private static async Task<int?> TryHealth(int port)
    {
        using var tcp = new TcpClient("127.0.0.1", port);
        var stream = tcp.GetStream();
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes("GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
            var buffer = new byte[4096];
            int n = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
            return n >= 12 ? int.Parse(Encoding.ASCII.GetString(buffer, 9, 3)) : null;
        }
        catch (IOException) { return null; }
    }

    [Fact]
    public async Task Failed_requests_and_admin_actions_are_logged_one_line_each_and_successes_are_not()
    {
        var root = TempDir("mlos-log-");
        File.WriteAllText(Path.Combine(root, "echo.bin"), "echo");
        try
        {
            using var server = new ServerProcess(root);
            Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/models/register",
                Json("""{"model_id":"logged","plugin_id":"csharp-echo","path":"echo.bin"}"""))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/models/logged/inference", Json("""{"input":"fine"}"""))).StatusCode);
            var missing = await server.Client.PostAsync("/v2/models/nope/infer", Json("""{"inputs":[]}"""));
            Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
            // Error bodies are plain JSON: a quote stays a quote.
            Assert.Contains("'nope'", await missing.Content.ReadAsStringAsync());
            // The console logger writes from a queue: wait for the last line, then read it all.
            var log = server.OutputOnce("POST /v2/models/{name}/infer model=nope -> 404");
            Assert.Contains("admin: model 'logged' registered and loaded", server.OutputOnce("admin: model 'logged' registered and loaded"));
            Assert.Contains("admin: model 'logged' registered and loaded", log);
            Assert.Contains("POST /v2/models/{name}/infer model=nope -> 404: no model with id 'nope'", log);
            Assert.DoesNotContain("/models/{**id} model=logged -> 200", log);

            var metrics = await server.Client.GetStringAsync("/metrics");
            Assert.DoesNotContain("unknown_service", metrics);
            Assert.Contains("mlos-core", metrics);
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task Debug_logging_adds_a_line_per_successful_request()
    {
        var root = TempDir("mlos-debug-");
        try
        {
            using var server = new ServerProcess(root, "--log-level", "debug");
            Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/health")).StatusCode);
            Assert.Contains("GET /health model=- -> 200", server.OutputOnce("GET /health model=- -> 200"));
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
