using System.Text.Json;
using Mlos.Core;
using Mlos.Smi.Abi;

namespace Mlos.Server.Triton;

/// <summary>
/// What a Triton config's <c>platform</c>/<c>backend</c> means here: which of our plugins serves
/// the model, the file a version folder holds by default, and which of the backend's
/// <c>parameters</c> (and <c>optimization.graph.level</c>, and the instance kind) become keys of
/// that plugin's model config. The plugin parses its config as ever (one option parser per
/// plugin); parameters without a counterpart are reported as ignored.
/// </summary>
internal sealed record TritonBackend(string PluginId, string Platform, string BackendName, string DefaultFile)
{
    public static readonly TritonBackend Onnx = new("onnx-runtime", "onnxruntime_onnx", "onnxruntime", "model.onnx");
    public static readonly TritonBackend Torch = new("torchsharp", "pytorch_libtorch", "pytorch", "model.pt");
    /// <summary>Triton's Python backend: a model.py with TritonPythonModel, on our Python bridge (see <see cref="TritonPython"/>).</summary>
    public static readonly TritonBackend Python = new(TritonPython.PluginId, "", "python", "model.py");

    /// <summary>The backend a config names, or null when it names none (the model file decides).</summary>
    public static TritonBackend? Named(TritonModelConfig c, string source)
    {
        TritonBackend? byPlatform = c.Platform switch
        {
            null => null,
            "onnxruntime_onnx" => Onnx,
            "pytorch_libtorch" => Torch,
            var p => throw new TextFormatException($"{source}: platform \"{p}\" is not served here (onnxruntime_onnx, pytorch_libtorch)"),
        };
        TritonBackend? byBackend = c.Backend switch
        {
            null => null,
            "onnxruntime" => Onnx,
            "pytorch" => Torch,
            "python" => Python,
            var b => throw new TextFormatException($"{source}: backend \"{b}\" is not served here (onnxruntime, pytorch, python)"),
        };
        if (byPlatform is not null && byBackend is not null && byPlatform != byBackend)
            throw new TextFormatException($"{source}: platform \"{c.Platform}\" and backend \"{c.Backend}\" name different backends");
        return byPlatform ?? byBackend;
    }

    /// <summary>The backend for a model file's type (a config that names none).</summary>
    public static TritonBackend? ForFile(string file) => Path.GetExtension(file).ToLowerInvariant() switch
    {
        ".onnx" => Onnx,
        ".pt" or ".pth" or ".torchscript" => Torch,
        _ => null,
    };

    /// <summary>
    /// The plugin's model config for <paramref name="c"/> (a JSON object, or null when nothing is
    /// set), and the parameters that have no counterpart.
    /// </summary>
    public (string? Json, List<string> Ignored) PluginConfig(TritonModelConfig c, int instanceGpu, string name = "")
    {
        if (this == Python) return (TritonPython.ModelConfig(name, c), []); // the model reads the whole config, parameters included
        var ignored = new List<string>();
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        int keys = 0;
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            foreach (var (key, value) in c.Parameters)
            {
                if (!WriteParameter(w, key, value)) ignored.Add($"parameters[\"{key}\"]");
                else keys++;
            }
            if (this == Onnx && c.GraphLevel is { } level)
            {
                // The ONNX Runtime backend's numbering: -1 basic, 1 basic + extended, 2 none; anything else all.
                w.WriteString("graph_optimization_level", level switch { -1 => "basic", 1 => "extended", 2 => "disable", _ => "all" });
                keys++;
            }
            if (instanceGpu >= 0) w.WriteString("device", $"cuda:{instanceGpu}");
            else if (instanceGpu == CpuOnly) w.WriteString("device", "cpu");
            if (instanceGpu != NoDevice) keys++;
            if (this == Torch && (c.Inputs.Count > 0 || c.Outputs.Count > 0))
            {
                // TorchScript files name no outputs and type nothing: the config's tensors are
                // the model's, in forward order (by N where every name is Triton's NAME__N).
                WriteSpecs(w, "inputs", ForwardOrder(c.Inputs), c.MaxBatchSize);
                WriteSpecs(w, "outputs", ForwardOrder(c.Outputs), c.MaxBatchSize);
                keys++;
            }
            w.WriteEndObject();
        }
        return (keys == 0 ? null : System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan), ignored);
    }

    /// <summary>Instance placement for <see cref="PluginConfig"/>: no device key, or CPU, or a GPU index (≥ 0).</summary>
    public const int NoDevice = -2, CpuOnly = -1;

    /// <summary>The PyTorch backend's convention: INPUT__0, INPUT__1… say their forward position.</summary>
    public static IReadOnlyList<TensorConfig> ForwardOrder(IReadOnlyList<TensorConfig> tensors)
    {
        static int Index(string name) =>
            name.LastIndexOf("__", StringComparison.Ordinal) is var at and > 0 && int.TryParse(name.AsSpan(at + 2), System.Globalization.NumberStyles.None, null, out var n) ? n : -1;
        return tensors.All(t => Index(t.Name) >= 0) ? tensors.OrderBy(t => Index(t.Name)).ToList() : tensors;
    }

    /// <summary>The plugin's declared specs (<c>[{"name","datatype","shape"}]</c>), the batch dimension put back in front.</summary>
    private static void WriteSpecs(Utf8JsonWriter w, string key, IReadOnlyList<TensorConfig> tensors, int? maxBatchSize)
    {
        if (tensors.Count == 0) return;
        w.WriteStartArray(key);
        foreach (var t in tensors)
        {
            w.WriteStartObject();
            w.WriteString("name", t.Name);
            if (t.Dtype != SmiDtype.Invalid) w.WriteString("datatype", SmiDtypes.Name(t.Dtype));
            if ((t.Reshape ?? t.Dims) is { } dims) // the model's own shape: a reshape is the core's (TensorReshape)
            {
                w.WriteStartArray("shape");
                if (maxBatchSize > 0) w.WriteNumberValue(-1);
                foreach (var d in dims) w.WriteNumberValue(d);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    private bool WriteParameter(Utf8JsonWriter w, string key, string value)
    {
        if (this != Onnx) return false;
        switch (key)
        {
            case "intra_op_thread_count": w.WriteNumber("intra_op_threads", Count(key, value)); return true;
            case "inter_op_thread_count": w.WriteNumber("inter_op_threads", Count(key, value)); return true;
            case "enable_mem_arena": w.WriteBoolean("cpu_mem_arena", Flag(key, value)); return true;
            case "gpu_mem_limit": w.WriteNumber("gpu_mem_limit", ulong.TryParse(value, out var bytes) ? bytes : throw Bad(key, value, "a number of bytes")); return true;
            default: return false;
        }
    }

    private static int Count(string key, string value) =>
        int.TryParse(value, System.Globalization.NumberStyles.None, null, out var n) ? n : throw Bad(key, value, "a whole number");

    private static bool Flag(string key, string value) => value switch
    {
        "1" or "true" => true,
        "0" or "false" => false,
        _ => throw Bad(key, value, "1, 0, true or false"),
    };

    private static MlosException Bad(string key, string value, string what) =>
        new(SmiStatus.InvalidParam, $"config.pbtxt: parameter \"{key}\" must be {what}, not \"{value}\"");
}
