using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.Python.Tests;

/// <summary>
/// The bridge in this test process (CPython embedded here): one interpreter per process, so
/// these tests run one after another.
/// </summary>
[Collection("python")]
public sealed class PythonPluginTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("mlos-python-").FullName;
    private readonly PythonPlugin _plugin = new();

    public void Dispose()
    {
        _plugin.Cleanup();
        Directory.Delete(_dir, recursive: true);
    }

    private string Config(string module, string cls) =>
        $$"""{"module":"{{module}}","class":"{{cls}}","path":"{{_dir}}"}""";

    private void Write(string module, string source) => File.WriteAllText(Path.Combine(_dir, module + ".py"), source);

    private static byte[] Run(PythonPlugin plugin, PythonModel model, byte[] input)
    {
        var output = new byte[256];
        int n = plugin.Inference(model, input, output);
        return output[..n];
    }

    [Fact]
    public void Initialize_again_after_cleanup_imports_the_edited_module()
    {
        Write("versioned", """
            class Plugin:
                def inference(self, handle, data):
                    return b"v1:" + data, 0
            """);
        _plugin.Initialize(Config("versioned", "Plugin"));
        var model = _plugin.RegisterModel(new SmiModelDescription("m", "", null, null, null));
        Assert.Equal("v1:x"u8.ToArray(), Run(_plugin, model, "x"u8.ToArray()));
        _plugin.Cleanup();

        Write("versioned", """
            class Plugin:
                def inference(self, handle, data):
                    return b"v2:" + data
            """);
        _plugin.Initialize(Config("versioned", "Plugin"));
        model = _plugin.RegisterModel(new SmiModelDescription("m", "", null, null, null));
        Assert.Equal("v2:x"u8.ToArray(), Run(_plugin, model, "x"u8.ToArray()));
    }

    [Fact]
    public void Dotnet_threads_share_the_interpreter_through_the_GIL()
    {
        Write("counter", """
            import threading
            class Plugin:
                def __init__(self):
                    self.lock = threading.Lock()
                    self.calls = 0
                def inference(self, handle, data):
                    with self.lock:
                        self.calls += 1
                    return bytes(reversed(data))
                def get_model_info(self, handle):
                    return {"calls": self.calls}
            """);
        _plugin.Initialize(Config("counter", "Plugin"));
        var model = _plugin.RegisterModel(new SmiModelDescription("m", "", null, null, null));
        Parallel.For(0, 4000, new ParallelOptions { MaxDegreeOfParallelism = 16 }, i =>
        {
            var input = BitConverter.GetBytes(i);
            Assert.Equal(input.Reverse().ToArray(), Run(_plugin, model, input));
        });
        Assert.Equal("""{"calls": 4000}""", _plugin.GetModelInfo(model));
    }

    [Fact]
    public void An_import_error_inside_the_module_names_the_missing_module()
    {
        Write("broken_import", "import no_such_dependency\nclass Plugin: pass\n");
        var e = Assert.Throws<SmiException>(() => _plugin.Initialize(Config("broken_import", "Plugin")));
        Assert.Equal(SmiStatus.Runtime, e.Status);
        Assert.Contains("No module named 'no_such_dependency'", e.Message);
        Assert.Contains("broken_import.py:1", e.Message);
    }

    [Fact]
    public void A_failing_initialize_leaves_the_bridge_uninitialized_and_reusable()
    {
        Write("refuses", """
            class Plugin:
                def initialize(self, config):
                    return -4
            class Fine:
                def inference(self, handle, data):
                    return data
            """);
        var e = Assert.Throws<SmiException>(() => _plugin.Initialize(Config("refuses", "Plugin")));
        Assert.Equal(SmiStatus.NotSupported, e.Status);
        Assert.Contains("refuses.Plugin.initialize() returned status SMI_ERROR_NOT_SUPPORTED (-4)", e.Message);
        Assert.Throws<SmiException>(() => _plugin.RegisterModel(new SmiModelDescription("m", "", null, null, null)));
        _plugin.Initialize(Config("refuses", "Fine"));
        var model = _plugin.RegisterModel(new SmiModelDescription("m", "", null, null, null));
        Assert.Equal("ok"u8.ToArray(), Run(_plugin, model, "ok"u8.ToArray()));
    }

    [Fact]
    public void An_answer_larger_than_the_buffer_says_the_size_needed()
    {
        Write("big", """
            class Plugin:
                def inference(self, handle, data):
                    return b"z" * 1000, 0
            """);
        _plugin.Initialize(Config("big", "Plugin"));
        var model = _plugin.RegisterModel(new SmiModelDescription("m", "", null, null, null));
        var e = Assert.Throws<SmiException>(() => _plugin.Inference(model, [], new byte[10]));
        Assert.Equal(SmiStatus.BufferTooSmall, e.Status);
        Assert.Equal(1000UL, e.RequiredSize);
    }
}
