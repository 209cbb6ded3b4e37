using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// #16: two libtorch builds in one server. The TorchSharp plugin runs a TorchScript model on its
/// libtorch 2.x in the server's process; the Python bridge serves a class that imports Debian's
/// torch (python3-torch 1.13, installed by ctest's <c>python_torch</c> setup when missing) and
/// runs the same file. In one process the second libtorch crashes in its static initialisers;
/// with the bridge in a host of its own (the default) both must answer the reference.
/// </summary>
public class TorchBesidePythonTorchTests
{
    private const string PythonSource = """
        import numpy as np
        import torch

        class TorchMlp:
            def __init__(self):
                self.models = {}

            def load_model(self, handle, path):
                self.models[handle] = torch.jit.load(path)
                return 0

            def unload_model(self, handle):
                self.models.pop(handle, None)
                return 0

            def get_model_io(self, handle):
                return {"inputs": [{"name": "input_0", "dtype": "FP32", "shape": [-1, 16]}],
                        "outputs": [{"name": "output_0", "dtype": "FP32", "shape": [-1, 4]},
                                    {"name": "torch_major", "dtype": "INT64", "shape": [1]}]}

            def inference(self, handle, data):
                return data

            def infer(self, handle, inputs):
                with torch.no_grad():
                    y = self.models[handle](torch.from_numpy(np.array(inputs["input_0"])))
                major = int(torch.__version__.split(".")[0])
                return {"output_0": y.numpy(), "torch_major": np.array([major], dtype=np.int64)}
        """;

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    [Fact]
    public async Task A_TorchScript_model_and_a_Python_class_importing_Debians_torch_both_answer_from_one_server()
    {
        long debianMajor = DebianTorchMajor();
        var root = Directory.CreateTempSubdirectory("mlos-torch-pair-").FullName;
        var classes = Directory.CreateTempSubdirectory("mlos-torch-pair-py-").FullName;
        try
        {
            File.Copy(Path.Combine(BuildTree.Models("torch"), "mlp.pt"), Path.Combine(root, "mlp.pt"));
            // The bridge imports only from inside a plugin folder: a folder of the one given.
            var module = Directory.CreateDirectory(Path.Combine(classes, "python")).FullName;
            File.WriteAllText(Path.Combine(module, "torch_mlp.py"), PythonSource);
            using var server = new ServerProcess(root, "--plugin-dir", classes, "--model", "torch-mlp=mlp.pt");
            var bridge = Path.Combine(BuildTree.PluginDir, "libmlos_python_plugin.so");
            var config = $$"""{"module":"torch_mlp","class":"TorchMlp","path":"{{module}}"}""";
            // No isolation said: the default puts the bridge in a host of its own.
            using (var r = await server.Client.PostAsync("/plugins/register", Json(
                       $$"""{"endpoint":"{{bridge}}","id":"python-torch","config":{{config}}}""")))
                Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());
            using (var r = await server.Client.PostAsync("/models/register", Json(
                       """{"model_id":"python-mlp","plugin_id":"python-torch","path":"mlp.pt","dynamic_batching":false}""")))
                Assert.True(r.IsSuccessStatusCode, await r.Content.ReadAsStringAsync());

            var plugins = JsonDocument.Parse(await server.Client.GetStringAsync("/plugins")).RootElement.GetProperty("plugins").EnumerateArray().ToArray();
            string IsolationOf(string id) => plugins.Single(p => p.GetProperty("id").GetString() == id).GetProperty("isolation").GetString()!;
            Assert.Equal("none", IsolationOf("torchsharp"));
            Assert.Equal("process", IsolationOf("python-torch"));

            var reference = File.ReadAllLines(Path.Combine(BuildTree.Models("torch"), "mlp.ref")).Where(l => !l.StartsWith('#')).Select(l => l.Split(' ')).ToArray();
            var x = string.Join(",", reference[0][6..]);
            var y = reference[1][6..].Select(double.Parse).ToArray();
            // Both, several times over, interleaved: neither library disturbs the other.
            for (int round = 0; round < 3; round++)
            {
                foreach (var model in new[] { "torch-mlp", "python-mlp" })
                {
                    using var r = await server.Client.PostAsync($"/v2/models/{model}/infer", Json(
                        $$"""{"inputs":[{"name":"input_0","shape":[3,16],"datatype":"FP32","data":[{{x}}]}]}"""));
                    var text = await r.Content.ReadAsStringAsync();
                    Assert.True(r.StatusCode == HttpStatusCode.OK, $"{model}: {(int)r.StatusCode} {text}");
                    var outputs = JsonDocument.Parse(text).RootElement.GetProperty("outputs").EnumerateArray().ToArray();
                    var output = outputs.Single(o => o.GetProperty("name").GetString() == "output_0");
                    Assert.Equal("[3,4]", output.GetProperty("shape").GetRawText());
                    var got = output.GetProperty("data").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                    Assert.All(y.Zip(got), p => Assert.True(Math.Abs(p.First - p.Second) <= 1e-5, $"{model}: {p.First} vs {p.Second}"));
                    if (model == "python-mlp") // the Python side really ran Debian's torch (1.x on bookworm), not TorchSharp's 2.x
                        Assert.Equal(debianMajor, outputs.Single(o => o.GetProperty("name").GetString() == "torch_major").GetProperty("data")[0].GetInt64());
                }
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
            Directory.Delete(classes, recursive: true);
        }
    }

    /// <summary>The major version of Debian's python3-torch, which ctest's python_torch setup installs (tests/setup/python-torch.sh).</summary>
    private static long DebianTorchMajor()
    {
        using var p = Process.Start(new ProcessStartInfo("/usr/bin/python3", ["-c", "import torch; print(torch.__version__.split('.')[0])"])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = p.StandardOutput.ReadToEnd();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0,
            $"this test needs Debian's python3-torch (run tests/setup/python-torch.sh, as ctest's python_torch setup does): {error.Trim().Split('\n').LastOrDefault()}");
        return long.Parse(output.Trim());
    }
}
