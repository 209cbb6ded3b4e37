using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// Plugin options from <c>initialize(config)</c>, and per-model overrides from the model's
/// config: <c>{"device":"cpu"|"cuda:N","intra_op_threads":N,"inter_op_threads":N,
/// "graph_optimization_level":"disable|basic|extended|all","allow_cpu_fallback":bool,
/// "gpu_mem_limit":bytes,"cpu_mem_arena":bool}</c>. A string that is not a JSON object (the guide's harness passes
/// "test-config") is a label and means defaults.
/// </summary>
internal sealed record OnnxConfig
{
    public string Device { get; init; } = "cpu";
    public int IntraOpThreads { get; init; }
    public int InterOpThreads { get; init; }
    public GraphOptimizationLevel OptimizationLevel { get; init; } = GraphOptimizationLevel.ORT_ENABLE_ALL;
    public bool AllowCpuFallback { get; init; }
    public ulong GpuMemLimit { get; init; }

    /// <summary>
    /// ONNX Runtime's CPU arena keeps the largest working set any request ever needed and never
    /// gives it back: one large request pins hundreds of MB for the life of the session. Off by
    /// default; without it tensors come from malloc, whose large blocks return on free.
    /// </summary>
    public bool CpuMemArena { get; init; }

    /// <summary>The CUDA device ordinal, or null for the CPU.</summary>
    public int? CudaDevice => Device == "cpu" ? null : int.Parse(Device.AsSpan("cuda:".Length));

    public static OnnxConfig Defaults { get; } = new();

    /// <summary>Parses <paramref name="json"/> over <paramref name="basis"/>; non-JSON text leaves it as it is.</summary>
    public static OnnxConfig Parse(string? json, OnnxConfig basis)
    {
        if (string.IsNullOrWhiteSpace(json) || json.TrimStart()[0] != '{') return basis;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new SmiException(SmiStatus.InvalidParam, $"ONNX config is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var c = basis;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                c = p.Name switch
                {
                    "device" => c with { Device = ParseDevice(p.Value) },
                    "intra_op_threads" => c with { IntraOpThreads = Count(p) },
                    "inter_op_threads" => c with { InterOpThreads = Count(p) },
                    "graph_optimization_level" => c with { OptimizationLevel = ParseLevel(p.Value) },
                    "allow_cpu_fallback" => c with { AllowCpuFallback = p.Value.ValueKind == JsonValueKind.True || (p.Value.ValueKind == JsonValueKind.False ? false : throw Bad(p, "true or false")) },
                    "cpu_mem_arena" => c with { CpuMemArena = p.Value.ValueKind == JsonValueKind.True || (p.Value.ValueKind == JsonValueKind.False ? false : throw Bad(p, "true or false")) },
                    "gpu_mem_limit" => c with { GpuMemLimit = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetUInt64(out var b) ? b : throw Bad(p, "a byte count") },
                    // Model-level keys the plugin reads elsewhere, and free-form metadata, pass.
                    _ => c,
                };
            }
            return c;
        }
    }

    /// <summary>Session options for this configuration; CUDA problems become clear errors or a logged fallback.</summary>
    public SessionOptions CreateSessionOptions(string modelName)
    {
        var options = new SessionOptions
        {
            GraphOptimizationLevel = OptimizationLevel,
            IntraOpNumThreads = IntraOpThreads,
            InterOpNumThreads = InterOpThreads,
            EnableCpuMemArena = CpuMemArena,
        };
        if (CudaDevice is not int device) return options;
        try
        {
            if (GpuMemLimit > 0)
            {
                using var cuda = new OrtCUDAProviderOptions();
                cuda.UpdateOptions(new Dictionary<string, string> { ["device_id"] = device.ToString(), ["gpu_mem_limit"] = GpuMemLimit.ToString() });
                options.AppendExecutionProvider_CUDA(cuda);
            }
            else options.AppendExecutionProvider_CUDA(device);
            return options;
        }
        catch (OnnxRuntimeException e)
        {
            if (!AllowCpuFallback)
            {
                options.Dispose();
                throw new SmiException(SmiStatus.NotSupported,
                    $"device {Device} requested for '{modelName}' but CUDA is not usable here: {e.Message.Trim()}. " +
                    "Install the CUDA 13 runtime libraries, or use \"device\":\"cpu\", or set \"allow_cpu_fallback\":true");
            }
            Console.Error.WriteLine($"[mlos-onnx] {Device} unavailable for '{modelName}' ({e.Message.Trim()}); running on the CPU (allow_cpu_fallback)");
            return options;
        }
    }

    private static string ParseDevice(JsonElement v)
    {
        var s = v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        if (s == "cpu") return s;
        if (s.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(s.AsSpan(5), out var n) && n >= 0) return s;
        if (s == "cuda") return "cuda:0";
        throw new SmiException(SmiStatus.InvalidParam, $"ONNX config: device must be \"cpu\" or \"cuda:N\", not {v.GetRawText()}");
    }

    private static GraphOptimizationLevel ParseLevel(JsonElement v) => (v.ValueKind == JsonValueKind.String ? v.GetString() : null) switch
    {
        "disable" => GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic" => GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended" => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all" => GraphOptimizationLevel.ORT_ENABLE_ALL,
        _ => throw new SmiException(SmiStatus.InvalidParam, $"ONNX config: graph_optimization_level must be disable, basic, extended or all, not {v.GetRawText()}"),
    };

    private static int Count(JsonProperty p) =>
        p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out var n) && n >= 0 ? CpuThreads.Fit((ulong)n)
        : throw Bad(p, "a non-negative integer (0 = ONNX Runtime's default; more than the cores counts as the cores)");

    private static SmiException Bad(JsonProperty p, string what) =>
        new(SmiStatus.InvalidParam, $"ONNX config: {p.Name} must be {what}, not {p.Value.GetRawText()}");
}
