using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.TorchSharp;

/// <summary>
/// Plugin options (<c>initialize</c>) and per-model overrides (model config):
/// <c>{"device":"cpu"|"cuda:N","allow_cpu_fallback":bool,"num_threads":N,"libtorch_dir":"/path"}</c>.
/// A string that is not a JSON object (the guide's harness passes "test-config") means defaults.
/// </summary>
internal sealed record TorchConfig
{
    public string Device { get; init; } = "cpu";
    public bool AllowCpuFallback { get; init; }
    public int NumThreads { get; init; }
    public string? LibtorchDir { get; init; }

    public static TorchConfig Defaults { get; } = new();

    public static TorchConfig Parse(string? json, TorchConfig basis)
    {
        if (string.IsNullOrWhiteSpace(json) || json.TrimStart()[0] != '{') return basis;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(json); }
        catch (JsonException e) { throw new SmiException(SmiStatus.InvalidParam, $"Torch config is not valid JSON: {e.Message}"); }
        using (doc)
        {
            var c = basis;
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                c = p.Name switch
                {
                    "device" => c with { Device = ParseDevice(p.Value) },
                    "allow_cpu_fallback" => c with { AllowCpuFallback = p.Value.ValueKind == JsonValueKind.True || (p.Value.ValueKind == JsonValueKind.False ? false : throw Bad(p, "true or false")) },
                    "num_threads" => c with { NumThreads = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out var n) && n >= 0 ? n : throw Bad(p, "a non-negative integer") },
                    "libtorch_dir" => c with { LibtorchDir = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : throw Bad(p, "a folder path") },
                    _ => c, // model-level keys (inputs, outputs) and free-form metadata
                };
            }
            return c;
        }
    }

    private static string ParseDevice(JsonElement v)
    {
        var s = v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
        if (s == "cpu") return s;
        if (s == "cuda") return "cuda:0";
        if (s.StartsWith("cuda:", StringComparison.Ordinal) && int.TryParse(s.AsSpan(5), out var n) && n >= 0) return s;
        throw new SmiException(SmiStatus.InvalidParam, $"Torch config: device must be \"cpu\" or \"cuda:N\", not {v.GetRawText()}");
    }

    private static SmiException Bad(JsonProperty p, string what) =>
        new(SmiStatus.InvalidParam, $"Torch config: {p.Name} must be {what}, not {p.Value.GetRawText()}");
}
