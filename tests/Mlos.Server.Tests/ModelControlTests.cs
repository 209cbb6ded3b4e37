using System.Net;
using System.Text;
using System.Text.Json;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// Triton's model control modes over real repositories: none (load all, no load/unload calls),
/// explicit (only --load-model at start, load/unload calls), poll (folders followed while a load
/// generator runs: no request to a model that stays may fail), and several repositories.
/// </summary>
public class ModelControlTests
{
    private static readonly string Mlp = Path.Combine(BuildTree.Models("onnx"), "mlp.onnx");
    private static readonly string Row = string.Join(",", Enumerable.Range(0, 16).Select(i => (i / 10.0).ToString(System.Globalization.CultureInfo.InvariantCulture)));

    private static void Version(string repo, string model, int version)
    {
        Directory.CreateDirectory(Path.Combine(repo, model, version.ToString()));
        File.Copy(Mlp, Path.Combine(repo, model, version.ToString(), "model.onnx"), overwrite: true);
    }

    private static async Task<HttpStatusCode> Infer(HttpClient client, string model)
    {
        using var r = await client.PostAsync($"/v2/models/{model}/infer",
            new StringContent($$"""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[{{Row}}]}]}""", Encoding.UTF8, "application/json"));
        return r.StatusCode;
    }

    private static async Task<HttpStatusCode> InferAt(HttpClient client, string model, int version)
    {
        using var r = await client.PostAsync($"/v2/models/{model}/versions/{version}/infer",
            new StringContent($$"""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[{{Row}}]}]}""", Encoding.UTF8, "application/json"));
        return r.StatusCode;
    }

    private static async Task<long> Successes(ServerProcess server, string model, int version) =>
        JsonDocument.Parse(await server.Client.GetStringAsync($"/v2/models/{model}/versions/{version}/stats")).RootElement
            .GetProperty("model_stats")[0].GetProperty("inference_stats").GetProperty("success").GetProperty("count").GetInt64();

    private static async Task<Dictionary<string, string>> Index(ServerProcess server)
    {
        using var r = await server.Client.PostAsync("/v2/repository/index", null);
        return JsonDocument.Parse(await r.Content.ReadAsStringAsync()).RootElement.EnumerateArray()
            .GroupBy(e => e.GetProperty("name").GetString()!)
            .ToDictionary(g => g.Key, g => string.Join(",", g.Select(e => $"{(e.TryGetProperty("version", out var v) ? v.GetString() : "-")}:{e.GetProperty("state").GetString()}")));
    }

    private static async Task Until(ServerProcess server, string what, Func<Task<bool>> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await done())
        {
            Assert.True(DateTime.UtcNow < deadline, $"not within 30 s: {what}\n{server.Output}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task Poll_mode_follows_the_folders_and_fails_no_request_to_a_model_that_stays()
    {
        var repo = Directory.CreateTempSubdirectory("mlos-poll-").FullName;
        Version(repo, "stay", 1);
        File.WriteAllText(Path.Combine(repo, "stay", "config.pbtxt"), "max_batch_size: 8\n");
        Version(repo, "steady", 1);
        Version(repo, "doomed", 1);
        Version(repo, "grow", 1);
        File.WriteAllText(Path.Combine(repo, "grow", "config.pbtxt"), "max_batch_size: 8\nversion_policy { all { } }\n");
        // Our own layout (the model file in the folder itself) until the test moves it to Triton's.
        Directory.CreateDirectory(Path.Combine(repo, "switch"));
        File.Copy(Mlp, Path.Combine(repo, "switch", "model.onnx"));
        try
        {
            using var server = new ServerProcess(repo, "--model-repository", repo, "--model-control-mode", "poll", "--repository-poll-secs", "1");
            Assert.Equal("1:READY", (await Index(server))["stay"]);

            // Load on the models that stay, from 4 loops, for the whole test.
            long served = 0, failed = 0;
            var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
            using var stop = new CancellationTokenSource();
            var load = Enumerable.Range(0, 5).Select(i => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var model = i == 4 ? "switch" : i % 2 == 0 ? "stay" : "steady";
                    var code = await Infer(server.Client, model);
                    if (code == HttpStatusCode.OK) Interlocked.Increment(ref served);
                    else
                    {
                        Interlocked.Increment(ref failed);
                        failures.Add($"{model}: {code}");
                    }
                }
            })).ToArray();

            // A new version: latest {num_versions: 1} moves to it, the old one is retired.
            Version(repo, "stay", 2);
            await Until(server, "version 2 served", async () => (await Index(server))["stay"] == "2:READY");
            // A changed config: reloaded in place.
            File.WriteAllText(Path.Combine(repo, "stay", "config.pbtxt"), "max_batch_size: 8\ndynamic_batching { max_queue_delay_microseconds: 500 }\n");
            await Until(server, "the new config served", async () =>
                (await server.Client.GetStringAsync("/v2/models/stay/config")).Contains("\"max_queue_delay_microseconds\":500"));
            // A broken config: the model as it was serves on.
            File.WriteAllText(Path.Combine(repo, "stay", "config.pbtxt"), "max_batch_size: eight\n");
            await Until(server, "the broken config reported", () => Task.FromResult(server.Output.Contains("'max_batch_size' must be a whole number, not eight")));
            // A removed model, and a new one.
            Directory.Delete(Path.Combine(repo, "doomed"), recursive: true);
            Version(repo, "newcomer", 1);
            await Until(server, "doomed gone, newcomer ready", async () =>
            {
                var index = await Index(server);
                return !index.ContainsKey("doomed") && index.GetValueOrDefault("newcomer") == "1:READY";
            });
            // A new version under all {}: it loads, and version 1 serves on as it was, untouched
            // (its statistics are not reset: a reload would have made it a new model).
            for (int k = 0; k < 3; k++) Assert.Equal(HttpStatusCode.OK, await InferAt(server.Client, "grow", 1));
            Version(repo, "grow", 2);
            await Until(server, "grow version 2 served beside 1", async () => (await Index(server))["grow"] == "2:READY,1:READY");
            Assert.Equal(3, await Successes(server, "grow", 1));
            Assert.Equal(0, await Successes(server, "grow", 2));
            // Our layout moved to Triton's (a version folder, no model file beside it) and back, under load.
            File.Move(Path.Combine(repo, "switch", "model.onnx"), Path.Combine(repo, "switch.onnx"));
            Version(repo, "switch", 3);
            await Until(server, "switch served as version 3", async () => (await Index(server))["switch"] == "3:READY");
            File.Move(Path.Combine(repo, "switch.onnx"), Path.Combine(repo, "switch", "model.onnx"));
            Directory.Delete(Path.Combine(repo, "switch", "3"), recursive: true);
            await Until(server, "switch back in our layout", async () => (await Index(server))["switch"] == "-:READY");
            // Every version folder removed: the model goes (Triton unloads it).
            Directory.Delete(Path.Combine(repo, "newcomer", "1"), recursive: true);
            await Until(server, "newcomer without versions unloaded", async () => (await Index(server)).GetValueOrDefault("newcomer") == "-:UNAVAILABLE");
            await Task.Delay(500); // load on the final state too
            stop.Cancel();
            await Task.WhenAll(load);

            Assert.True(failed == 0, $"{failed} of {served + failed} requests failed: {string.Join("; ", failures.Take(5))}");
            Assert.True(served > 50, $"only {served} requests ran");
            Assert.Equal(HttpStatusCode.OK, await Infer(server.Client, "stay"));
            Assert.Equal(HttpStatusCode.NotFound, await Infer(server.Client, "newcomer"));
            Assert.Equal(HttpStatusCode.NotFound, await Infer(server.Client, "doomed"));
            Assert.Contains("\"max_queue_delay_microseconds\":500", await server.Client.GetStringAsync("/v2/models/stay/config"));

            // The folders decide in poll mode: the load and unload calls are refused.
            using var refused = await server.Client.PostAsync("/v2/repository/models/stay/unload", Admin.Empty);
            Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
            Assert.Contains("not allowed while the repository is polled", await refused.Content.ReadAsStringAsync());
            Console.WriteLine($"poll mode: 9 changes applied, {served} requests served, {failed} failed");
        }
        finally { Directory.Delete(repo, recursive: true); }
    }

    [Fact]
    public async Task Explicit_mode_loads_only_what_it_is_told_and_none_mode_refuses_the_calls()
    {
        var repo = Directory.CreateTempSubdirectory("mlos-explicit-").FullName;
        Version(repo, "a", 1);
        Version(repo, "b", 1);
        try
        {
            using (var server = new ServerProcess(repo, "--model-repository", repo, "--model-control-mode", "explicit", "--load-model", "a"))
            {
                Assert.Equal(new Dictionary<string, string> { ["a"] = "1:READY", ["b"] = "-:UNAVAILABLE" }, await Index(server));
                Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/v2/repository/models/b/load", Admin.Empty)).StatusCode);
                Assert.Equal(HttpStatusCode.OK, await Infer(server.Client, "b"));
                Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/v2/repository/models/a/unload", Admin.Empty)).StatusCode);
                Assert.Equal("1:UNAVAILABLE", (await Index(server))["a"]);
            }
            using (var server = new ServerProcess(repo, "--model-repository", repo))
            {
                Assert.Equal(new Dictionary<string, string> { ["a"] = "1:READY", ["b"] = "1:READY" }, await Index(server));
                using var refused = await server.Client.PostAsync("/v2/repository/models/a/unload", Admin.Empty);
                Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
                Assert.Contains("not allowed in model control mode 'none'", await refused.Content.ReadAsStringAsync());
                Assert.Equal(HttpStatusCode.OK, await Infer(server.Client, "a"));
            }
        }
        finally { Directory.Delete(repo, recursive: true); }
    }

    /// <summary>
    /// Load calls for one model that arrive together run one after another (each a reload of
    /// what the folder holds): every one succeeds, one model per version serves, nothing is
    /// left registered twice, and requests meanwhile are answered.
    /// </summary>
    [Fact]
    public async Task Concurrent_loads_of_one_model_all_succeed_and_leave_one_model_per_version()
    {
        var repo = Directory.CreateTempSubdirectory("mlos-concurrent-").FullName;
        Version(repo, "m", 1);
        Version(repo, "m", 2);
        File.WriteAllText(Path.Combine(repo, "m", "config.pbtxt"), "max_batch_size: 8\nversion_policy { all { } }\ninstance_group [ { count: 2 } ]\n");
        try
        {
            using var server = new ServerProcess(repo, "--model-repository", repo, "--model-control-mode", "explicit");
            var loads = Enumerable.Range(0, 6).Select(async _ =>
            {
                using var r = await server.Client.PostAsync("/v2/repository/models/m/load", Admin.Empty);
                return (r.StatusCode, await r.Content.ReadAsStringAsync());
            }).ToArray();
            var requests = new List<HttpStatusCode>();
            while (!loads.All(l => l.IsCompleted)) requests.Add(await Infer(server.Client, "m"));
            foreach (var (code, body) in await Task.WhenAll(loads)) Assert.True(code == HttpStatusCode.OK, body);
            Assert.Equal("2:READY,1:READY", (await Index(server))["m"]);
            var models = JsonDocument.Parse(await server.Client.GetStringAsync("/models")).RootElement.GetProperty("models").EnumerateArray()
                .Where(e => e.GetProperty("id").GetString() == "m").Select(e => e.GetProperty("version").GetString()!).Order().ToArray();
            Assert.Equal(["1", "2"], models);
            // Before the first load finished the model was not there (404); after it, every answer is 200.
            Assert.All(requests.SkipWhile(c => c == HttpStatusCode.NotFound), c => Assert.Equal(HttpStatusCode.OK, c));
            Assert.Equal(HttpStatusCode.OK, await Infer(server.Client, "m"));
        }
        finally { Directory.Delete(repo, recursive: true); }
    }

    [Fact]
    public async Task Several_repositories_serve_together_and_a_name_in_two_is_refused()
    {
        var first = Directory.CreateTempSubdirectory("mlos-repo-a-").FullName;
        var second = Directory.CreateTempSubdirectory("mlos-repo-b-").FullName;
        Version(first, "left", 1);
        Version(second, "right", 1);
        Version(first, "twice", 1);
        Version(second, "twice", 1);
        try
        {
            // A folder given with a trailing slash is the same folder.
            using var server = new ServerProcess(first, "--model-repository", first + "/", "--model-repository", second);
            var index = await Index(server);
            Assert.Equal("1:READY", index["left"]);
            Assert.Equal("1:READY", index["right"]);
            Assert.Equal("-:UNAVAILABLE", index["twice"]);
            Assert.Contains("model 'twice' is in more than one repository", server.OutputOnce("model 'twice' is in more than one repository"));
            Assert.Equal(HttpStatusCode.OK, await Infer(server.Client, "right"));
        }
        finally
        {
            Directory.Delete(first, recursive: true);
            Directory.Delete(second, recursive: true);
        }
    }

    [Theory]
    [InlineData("--model-control-mode", "explicit", "needs a --model-repository")]
    [InlineData("--model-control-mode", "sometimes", "unknown model control mode 'sometimes' (none, explicit, poll)")]
    public async Task Bad_control_options_stop_the_server_with_the_reason(string option, string value, string message)
    {
        var info = new System.Diagnostics.ProcessStartInfo(Path.Combine(BuildTree.Dir, "mlos_core"), [option, value, "--no-grpc", "--http-port", "1"])
        { RedirectStandardError = true, RedirectStandardOutput = true };
        using var p = System.Diagnostics.Process.Start(info)!;
        var errors = p.StandardError.ReadToEndAsync();
        await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync(new CancellationTokenSource(10_000).Token);
        Assert.NotEqual(0, p.ExitCode);
        Assert.Contains(message, await errors);
    }

    /// <summary>
    /// A recursive delete seen half done: a scan between the removal of a version folder's files
    /// and of the folder itself finds an empty version folder (which does not load); the folder's
    /// removal must still count as a change, or the model stays as that scan left it.
    /// </summary>
    [Fact]
    public async Task Poll_mode_sees_an_empty_version_folder_go()
    {
        var repo = Directory.CreateTempSubdirectory("mlos-poll-empty-").FullName;
        Directory.CreateDirectory(Path.Combine(repo, "m"));
        File.Copy(Mlp, Path.Combine(repo, "m", "model.onnx"));
        try
        {
            using var server = new ServerProcess(repo, "--model-repository", repo, "--model-control-mode", "poll", "--repository-poll-secs", "1");
            Assert.Equal("-:READY", (await Index(server))["m"]);
            int Loads() => server.Output.Split('\n').Count(l => l.Contains("model 'm' reloaded"));
            int before = Loads();
            Directory.CreateDirectory(Path.Combine(repo, "m", "3"));
            server.OutputOnce("version 3 holds no model file");
            Directory.Delete(Path.Combine(repo, "m", "3"));
            await Until(server, "m reloaded in our layout once its empty version folder is gone", () => Task.FromResult(Loads() > before));
            Assert.Equal("-:READY", (await Index(server))["m"]);
        }
        finally { Directory.Delete(repo, recursive: true); }
    }
}
