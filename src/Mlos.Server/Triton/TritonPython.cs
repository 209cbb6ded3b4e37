using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server.Triton;

/// <summary>
/// Triton's Python backend (<c>backend: "python"</c>, a <c>model.py</c> with <c>TritonPythonModel</c>)
/// served by our Python bridge: the bridge runs the adapter class <c>TritonPythonBackend</c>
/// (<c>mlos_triton_python.py</c>, shipped in the plugin folder's <c>triton_python/</c>), which
/// stands in for <c>triton_python_backend_utils</c> and gives each model instance its own
/// <c>TritonPythonModel</c>. The bridge is loaded for it when the first such model loads; it
/// then serves that class only, so a bridge already registered with another class is refused.
/// </summary>
internal static class TritonPython
{
    public const string PluginId = "python-bridge";
    public const string AdapterFolder = "triton_python";
    private const string AdapterName = "MLOS Triton Python backend";

    private static readonly Lock s_load = new();

    /// <summary>The Python bridge running the adapter: loaded from the first plugin folder that has both.</summary>
    public static void EnsureBridge(ServerState state)
    {
        lock (s_load)
        {
            if (state.Core.Plugins.FirstOrDefault(p => p.Id == PluginId) is { } loaded)
            {
                if (loaded.Name != AdapterName)
                    throw new MlosException(SmiStatus.AlreadyExists,
                        $"backend \"python\" needs the Python bridge serving Triton's Python models, but plugin '{PluginId}' is registered for '{loaded.Name}'");
                return;
            }
            var dir = state.Options.PluginDirs.FirstOrDefault(d =>
                File.Exists(Path.Combine(d, PluginFolders.PythonBridge)) && File.Exists(Path.Combine(d, AdapterFolder, "mlos_triton_python.py")))
                ?? throw new MlosException(SmiStatus.NotFound,
                    $"backend \"python\" needs {PluginFolders.PythonBridge} and {AdapterFolder}/mlos_triton_python.py in a plugin folder ({string.Join(", ", state.Options.PluginDirs)})");
            // The rules of every other way in: the files lie in a plugin folder (links resolved), and so does what the config names.
            var bridge = state.InPluginFolder(Path.Combine(dir, PluginFolders.PythonBridge))
                ?? throw new MlosException(SmiStatus.InvalidParam, $"{Path.Combine(dir, PluginFolders.PythonBridge)} links to a file outside the plugin folders");
            var config = JsonSerializer.Serialize(new BridgeConfig("mlos_triton_python", "TritonPythonBackend", Path.GetFullPath(Path.Combine(dir, AdapterFolder))), TritonPythonJson.Default.BridgeConfig);
            state.CheckPluginConfig(bridge, config);
            var plugin = state.Core.LoadPlugin(bridge, config: config);
            state.Log.Admin($"plugin '{plugin.Id}' loaded from {bridge} for Triton's Python backend");
        }
    }

    /// <summary>What a Python-backend config asks for that the bridge cannot give, refused before any Python runs.</summary>
    public static void Check(TritonModelConfig c, string source)
    {
        if (c.Parameters.Any(p => p.Key == "EXECUTION_ENV_PATH"))
            throw new TextFormatException($"{source}: parameters EXECUTION_ENV_PATH (a packed Python environment) is not served: the bridge runs the system's CPython with its packages");
        if (c.Inputs.Concat(c.Outputs).FirstOrDefault(t => t.Dtype == SmiDtype.Bytes) is { } text)
            throw new TextFormatException($"{source}: '{text.Name}' is TYPE_STRING, which the Python bridge does not carry (numeric tensors only)");
    }

    /// <summary>The bridge's model config: the model's config.pbtxt as Triton's JSON (what <c>args["model_config"]</c> holds).</summary>
    public static string ModelConfig(string name, TritonModelConfig c)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteStartObject("triton_model_config");
            ModelConfigJson.Write(w, EffectiveConfig.Declared(c.Name ?? name, c, TritonBackend.Python.BackendName, c.DefaultModelFilename ?? TritonBackend.Python.DefaultFile));
            w.WriteEndObject();
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}

internal sealed record BridgeConfig(
    [property: System.Text.Json.Serialization.JsonPropertyName("module")] string Module,
    [property: System.Text.Json.Serialization.JsonPropertyName("class")] string Class,
    [property: System.Text.Json.Serialization.JsonPropertyName("path")] string Path);

[System.Text.Json.Serialization.JsonSerializable(typeof(BridgeConfig))]
internal sealed partial class TritonPythonJson : System.Text.Json.Serialization.JsonSerializerContext;
