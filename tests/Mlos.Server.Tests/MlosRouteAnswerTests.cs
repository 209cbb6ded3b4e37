using System.Net;
using System.Text;
using System.Text.Json;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>The MLOS route's answer buffer: a model runs once per request, however large its answer.</summary>
public class MlosRouteAnswerTests
{
    [Fact]
    public async Task A_model_with_a_large_answer_runs_again_only_the_first_time()
    {
        // The Python bridge serves a class whose untyped answer (200 KB) outgrows the route's
        // first guess (64 KB): the first request runs it twice (BUFFER_TOO_SMALL, then the size it
        // asked for); later ones start at that size and run it once.
        var root = Directory.CreateTempSubdirectory("mlos-answer-models-").FullName;
        File.WriteAllText(Path.Combine(root, "big.bin"), "the class ignores its model file");
        var plugins = Directory.CreateTempSubdirectory("mlos-answer-plugins-").FullName;
        var python = Directory.CreateDirectory(Path.Combine(plugins, "python")).FullName; // inside a plugin folder, as the bridge requires
        File.WriteAllText(Path.Combine(python, "big_answer.py"), """
            class BigAnswer:
                def inference(self, handle, data):
                    return b"x" * 200000
            """);
        try
        {
            using var server = new ServerProcess(root, "--plugin-dir", plugins);
            var bridge = JsonSerializer.Serialize("file://" + Path.Combine(BuildTree.PluginDir, "libmlos_python_plugin.so"));
            using (var r = await server.Client.PostAsync("/plugins/register", Json(
                $$$"""{"endpoint":{{{bridge}}},"config":{"module":"big_answer","class":"BigAnswer","path":{{{JsonSerializer.Serialize(python)}}}}}""")))
                Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
            using (var r = await server.Client.PostAsync("/models/register", Json("""{"model_id":"big","plugin_id":"python-bridge","path":"big.bin"}""")))
                Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
            for (int i = 0; i < 3; i++)
            {
                using var r = await server.Client.PostAsync("/models/big/inference", Json("""{"input":"go"}"""));
                var text = await r.Content.ReadAsStringAsync();
                Assert.True(r.StatusCode == HttpStatusCode.OK, text);
                Assert.Equal(200000, JsonDocument.Parse(text).RootElement.GetProperty("outputs").GetString()!.Length);
            }
            using var stats = JsonDocument.Parse(await server.Client.GetStringAsync("/v2/models/big/stats"));
            var big = stats.RootElement.GetProperty("model_stats")[0];
            // Three successful executions, and one run that found the buffer too small (the first
            // request's): 2 + 1 + 1 runs, not 2 + 2 + 2.
            Assert.Equal(3, big.GetProperty("execution_count").GetInt64());
            Assert.Equal(1, big.GetProperty("inference_stats").GetProperty("fail").GetProperty("count").GetInt64());
        }
        finally
        {
            Directory.Delete(root, recursive: true);
            Directory.Delete(plugins, recursive: true);
        }
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");
}
