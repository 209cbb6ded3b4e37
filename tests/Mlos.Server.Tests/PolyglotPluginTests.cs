using System.Net;
using System.Text;
using System.Text.Json;
using Mlos.Tests;

namespace Mlos.Server.Tests;

/// <summary>
/// A server whose plugin folders hold the Python bridge (build/plugins, not loaded at start: it
/// needs a config) and a copy of the Go plugin under a name start-up does not load, so that both
/// are registered over HTTP as a user would.
/// </summary>
public sealed class PolyglotFixture : IDisposable
{
    public PolyglotFixture()
    {
        Root = Directory.CreateTempSubdirectory("mlos-polyglot-models-").FullName;
        PluginDir = Directory.CreateTempSubdirectory("mlos-polyglot-plugins-").FullName;
        File.Copy(Path.Combine(BuildTree.Repo, "c-tests", "fixtures", "affine.json"), Path.Combine(Root, "affine.json"));
        File.Copy(BuildTree.GoPlugin, Path.Combine(PluginDir, "go_example.so"));
        // The bridge imports Python code only from a plugin folder: the sample class goes there.
        PythonDir = Directory.CreateDirectory(Path.Combine(PluginDir, "python")).FullName;
        foreach (var file in Directory.EnumerateFiles(Path.Combine(BuildTree.Repo, "c-tests", "python"), "*.py"))
            File.Copy(file, Path.Combine(PythonDir, Path.GetFileName(file)));
        Server = new ServerProcess(Root, "--plugin-dir", PluginDir);
    }

    public string Root { get; }
    public string PluginDir { get; }
    public string PythonDir { get; }
    public ServerProcess Server { get; }

    public void Dispose()
    {
        Server.Dispose();
        Directory.Delete(Root, recursive: true);
        Directory.Delete(PluginDir, recursive: true);
    }
}

public class PolyglotPluginTests(PolyglotFixture fixture) : IClassFixture<PolyglotFixture>
{
    private HttpClient Http => fixture.Server.Client;

    private async Task<(HttpStatusCode Code, JsonElement Body)> Post(string path, string json)
    {
        using var response = await Http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static string Quote(string s) => JsonSerializer.Serialize(s);

    [Fact]
    public async Task Python_and_Go_plugins_register_over_http_and_serve_models()
    {
        var pythonDir = fixture.PythonDir;
        var bridge = Path.Combine(BuildTree.PluginDir, "libmlos_python_plugin.so");
        var (code, body) = await Post("/plugins/register",
            $$$"""{"endpoint":{{{Quote("file://" + bridge)}}},"config":{"module":"my_python_plugin","class":"MyPythonPlugin","path":{{{Quote(pythonDir)}}}}}""");
        Assert.True(code == HttpStatusCode.OK, body.ToString());
        Assert.Equal("python-bridge", body.GetProperty("plugin_id").GetString());
        Assert.Equal("My Python ML Plugin", body.GetProperty("name").GetString());

        (code, body) = await Post("/plugins/register", $$"""{"endpoint":{{Quote("file://" + Path.Combine(fixture.PluginDir, "go_example.so"))}}}""");
        Assert.True(code == HttpStatusCode.OK, body.ToString());
        Assert.Equal("go-example", body.GetProperty("plugin_id").GetString());

        foreach (var (id, plugin, framework) in new[] { ("py-echo", "python-bridge", "echo"), ("py-affine", "python-bridge", "affine"), ("go-echo", "go-example", "echo") })
        {
            (code, body) = await Post("/models/register", $$"""{"model_id":"{{id}}","plugin_id":"{{plugin}}","path":"affine.json","framework":"{{framework}}"}""");
            Assert.True(code == HttpStatusCode.OK, $"{id}: {body}");
        }

        // MLOS route, untyped: the guide's bytes-in, bytes-out protocol in Python and in Go.
        (code, body) = await Post("/models/py-echo/inference", """{"input":"hello from http"}""");
        Assert.True(code == HttpStatusCode.OK, body.ToString());
        Assert.Equal("hello from http", body.GetProperty("outputs").GetString());
        (code, body) = await Post("/models/go-echo/inference", """{"input":"hello, Go"}""");
        Assert.True(code == HttpStatusCode.OK, body.ToString());
        Assert.Equal("hello, Go", body.GetProperty("outputs").GetString());

        // KServe v2, typed: numpy arrays in the Python class, y = 2.5x - 1.
        (code, body) = await Post("/v2/models/py-affine/infer", """{"inputs":[{"name":"x","datatype":"FP32","shape":[4],"data":[0,1,2,-4]}]}""");
        Assert.True(code == HttpStatusCode.OK, body.ToString());
        var output = body.GetProperty("outputs")[0];
        Assert.Equal("y", output.GetProperty("name").GetString());
        Assert.Equal([-1f, 1.5f, 4f, -11f], output.GetProperty("data").EnumerateArray().Select(e => e.GetSingle()).ToArray());

        // A Python status comes back as the matching HTTP error with the class's words.
        (code, body) = await Post("/models/py-affine/inference", """{"input":"abc"}""");
        Assert.Equal(HttpStatusCode.BadRequest, code);
        Assert.Contains("inference() returned status SMI_ERROR_INVALID_PARAM", body.GetProperty("message").GetString());
        (code, body) = await Post("/v2/models/go-echo/infer", """{"inputs":[{"name":"x","datatype":"BYTES","shape":[1],"data":["a"]}]}""");
        Assert.NotEqual(HttpStatusCode.OK, code);
    }

    [Fact]
    public async Task The_bridge_imports_only_from_its_path_even_past_a_namespace_folder()
    {
        // A bare folder "json" in the path is a namespace portion, which Python completes from the
        // standard library's regular package: the class would come from outside the path.
        var plugins = Directory.CreateTempSubdirectory("mlos-pyns-plugins-").FullName;
        var root = Directory.CreateTempSubdirectory("mlos-pyns-models-").FullName;
        try
        {
            var path = Directory.CreateDirectory(Path.Combine(plugins, "py")).FullName;
            Directory.CreateDirectory(Path.Combine(path, "json"));
            using var server = new ServerProcess(root, "--plugin-dir", plugins);
            var bridge = Path.Combine(BuildTree.PluginDir, "libmlos_python_plugin.so");
            var (code, body) = await Post(server.Client, "/plugins/register",
                $$$"""{"endpoint":{{{Quote("file://" + bridge)}}},"config":{"module":"json","class":"JSONDecoder","path":{{{Quote(path)}}}}}""");
            Assert.NotEqual(HttpStatusCode.OK, code);
            Assert.Contains("not found in", body.GetProperty("message").GetString());
        }
        finally
        {
            Directory.Delete(plugins, recursive: true);
            Directory.Delete(root, recursive: true);
        }
    }

    private static async Task<(HttpStatusCode Code, JsonElement Body)> Post(HttpClient http, string path, string json)
    {
        using var response = await http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }
}
