using System.Net;
using System.Text;
using System.Text.Json;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// The server with isolated plugins (#16): <c>--isolation process</c> and a register body's
/// <c>"isolation"</c> put plugins in host processes of their own; a plugin that crashes there
/// fails the request it ran with 503 and the signal, its models turn not ready, and everything
/// else (the server, its other plugins) serves on.
/// </summary>
public class IsolationServerTests
{
    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    private static string Repository(params (string Name, string Config)[] models)
    {
        var repo = Directory.CreateTempSubdirectory("mlos-isolation-").FullName;
        File.WriteAllText(Path.Combine(repo, "echo.bin"), "x");
        foreach (var (name, config) in models)
        {
            Directory.CreateDirectory(Path.Combine(repo, name));
            File.WriteAllText(Path.Combine(repo, name, "model.bin"), "x");
            File.WriteAllText(Path.Combine(repo, name, "config.json"), $$"""{"plugin_id":"hostile","file":"model.bin","config":"{{config}}"}""");
        }
        return repo;
    }

    private const string Input = """{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1.5,2,3,-4]}]}""";

    private static JsonElement PluginEntry(string plugins, string id) =>
        JsonDocument.Parse(plugins).RootElement.GetProperty("plugins").EnumerateArray().Single(p => p.GetProperty("id").GetString() == id);

    [Fact]
    public async Task A_plugin_that_segfaults_fails_its_request_with_503_and_the_server_and_its_other_plugins_serve_on()
    {
        var repo = Repository(("ok", ""), ("crash", "crash=segv"));
        try
        {
            using var server = new ServerProcess(repo, "--model-repository", repo, "--isolation", "process",
                "--plugin-dir", Path.Combine(BuildTree.Dir, "c-tests", "plugins"));
            var hostile = PluginEntry(await server.Client.GetStringAsync("/plugins"), "hostile");
            Assert.Equal("process", hostile.GetProperty("isolation").GetString());
            Assert.True(hostile.GetProperty("alive").GetBoolean());
            int pid = hostile.GetProperty("pid").GetInt32();
            Assert.True(File.Exists($"/proc/{pid}/status"));

            using (var ok = await server.Client.PostAsync("/v2/models/ok/infer", Json(Input)))
            {
                var body = await ok.Content.ReadAsStringAsync();
                Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
                Assert.Contains("\"data\":[1.5,2,3,-4]", body);
            }
            using var register = await server.Client.PostAsync("/models/register", Json("""{"model_id":"e","plugin_id":"csharp-echo","path":"echo.bin"}"""));
            Assert.Equal(HttpStatusCode.OK, register.StatusCode);

            using (var crash = await server.Client.PostAsync("/v2/models/crash/infer", Json(Input)))
            {
                Assert.Equal(HttpStatusCode.ServiceUnavailable, crash.StatusCode);
                var error = JsonDocument.Parse(await crash.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString();
                Assert.Equal("SIGSEGV in plugin 'hostile' while running model 'crash'", error);
            }

            // Its models are not ready; the server is, and says which plugin is down.
            using (var ready = await server.Client.GetAsync("/v2/models/ok/ready"))
                Assert.False(JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("ready").GetBoolean());
            var health = JsonDocument.Parse(await server.Client.GetStringAsync("/v2/health/ready")).RootElement;
            Assert.True(health.GetProperty("ready").GetBoolean());
            Assert.Equal("hostile", health.GetProperty("plugins_down")[0].GetString());
            hostile = PluginEntry(await server.Client.GetStringAsync("/plugins"), "hostile");
            Assert.False(hostile.GetProperty("alive").GetBoolean());
            Assert.Contains("SIGSEGV", hostile.GetProperty("last_failure").GetString());
            using (var after = await server.Client.PostAsync("/v2/models/ok/infer", Json(Input)))
                Assert.Equal(HttpStatusCode.ServiceUnavailable, after.StatusCode);
            var metrics = await server.Client.GetStringAsync("/metrics");
            Assert.Matches("mlos_plugin_host_crashes_total\\{[^}]*plugin=\"hostile\"[^}]*\\} 1", metrics);
            Assert.Matches("mlos_plugin_up\\{[^}]*plugin=\"hostile\"[^}]*\\} 0", metrics);

            // Another isolated plugin in the same server answers as before.
            var echo = PluginEntry(await server.Client.GetStringAsync("/plugins"), "csharp-echo");
            Assert.Equal("process", echo.GetProperty("isolation").GetString());
            using var echoed = await server.Client.PostAsync("/models/e/inference", Json("""{"input":"still here"}"""));
            Assert.Equal(HttpStatusCode.OK, echoed.StatusCode);
            Assert.Contains("still here", await echoed.Content.ReadAsStringAsync());
        }
        finally { Directory.Delete(repo, recursive: true); }
    }

    [Fact]
    public async Task A_register_body_chooses_isolation_per_plugin_and_a_bad_value_is_a_400()
    {
        var repo = Repository();
        try
        {
            using var server = new ServerProcess(repo, "--plugin-dir", Path.Combine(BuildTree.Dir, "c-tests", "plugins"));
            var guide = BuildTree.FixturePlugin("libmlos_guide_c_plugin.so");
            using (var bad = await server.Client.PostAsync("/plugins/register", Json($$"""{"endpoint":"{{guide}}","id":"g","isolation":"sandbox"}""")))
            {
                Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
                var message = JsonDocument.Parse(await bad.Content.ReadAsStringAsync()).RootElement.GetProperty("message").GetString();
                Assert.Equal("plugin registration: 'isolation' must be \"process\", \"none\" or \"auto\"", message);
            }
            using var ok = await server.Client.PostAsync("/plugins/register", Json($$"""{"endpoint":"{{guide}}","id":"g","isolation":"none"}"""));
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
            var onnx = Path.Combine(BuildTree.PluginDir, "libmlos_onnx_plugin.so");
            using var isolatedOnnx = await server.Client.PostAsync("/plugins/register", Json($$"""{"endpoint":"{{onnx}}","id":"onnx-isolated","isolation":"process"}"""));
            Assert.Equal(HttpStatusCode.OK, isolatedOnnx.StatusCode);
            var plugins = await server.Client.GetStringAsync("/plugins");
            Assert.Equal("none", PluginEntry(plugins, "g").GetProperty("isolation").GetString());
            Assert.False(PluginEntry(plugins, "g").TryGetProperty("pid", out _));
            Assert.Equal("process", PluginEntry(plugins, "onnx-isolated").GetProperty("isolation").GetString());
            // Loaded from the plugin folder at start with nothing said: the default ("auto")
            // puts a plugin that is not first-party C# in a host of its own.
            Assert.Equal("process", PluginEntry(plugins, "hostile").GetProperty("isolation").GetString());
            Assert.True(PluginEntry(plugins, "hostile").GetProperty("pid").GetInt32() > 0);
        }
        finally { Directory.Delete(repo, recursive: true); }
    }

    [Fact]
    public async Task Hosts_end_when_the_server_is_killed_with_sigkill_and_when_it_stops_with_sigterm()
    {
        var repo = Repository(("ok", ""));
        try
        {
            foreach (var signal in new[] { "KILL", "TERM" })
            {
                using var server = new ServerProcess(repo, "--model-repository", repo, "--isolation", "process",
                    "--plugin-dir", Path.Combine(BuildTree.Dir, "c-tests", "plugins"));
                var pids = JsonDocument.Parse(await server.Client.GetStringAsync("/plugins")).RootElement.GetProperty("plugins")
                    .EnumerateArray().Select(p => p.GetProperty("pid").GetInt32()).ToArray();
                Assert.True(pids.Length >= 2, "every plugin has a host");
                Assert.All(pids, pid => Assert.True(Directory.Exists($"/proc/{pid}")));
                System.Diagnostics.Process.Start("kill", [$"-{signal}", server.Pid.ToString()])!.WaitForExit();
                Assert.NotNull(server.WaitForExit(TimeSpan.FromSeconds(30)));
                var deadline = DateTime.UtcNow.AddSeconds(10);
                // Orphaned hosts are reparented and reaped by init: gone from /proc once they exit.
                while (pids.Any(pid => Directory.Exists($"/proc/{pid}") && !File.ReadAllText($"/proc/{pid}/stat").Contains(") Z ")))
                {
                    Assert.True(DateTime.UtcNow < deadline, $"hosts still running 10 s after SIG{signal}: {string.Join(", ", pids.Where(pid => Directory.Exists($"/proc/{pid}")))}");
                    await Task.Delay(20);
                }
            }
        }
        finally { Directory.Delete(repo, recursive: true); }
    }
}
