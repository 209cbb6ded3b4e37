using System.Globalization;
using System.Text.Json;
using Mlos.Core;
using Mlos.Core.Models;

namespace Mlos.Server;

/// <summary>
/// Ready-to-paste curl lines for a loaded model, MLOS and KServe v2, with every input filled
/// (free dims as 1, small values of each input's own datatype). None when an input is BYTES or
/// too large to paste, or when the model does not say its inputs.
/// </summary>
internal static class DemoRequests
{
    private const long MaxValuesPerInput = 64;

    public static void Print(string url, Model model)
    {
        using var info = JsonDocument.Parse(RegistryJson.ModelInfo(model));
        if (!info.RootElement.TryGetProperty("inputs", out var inputs) || inputs.GetArrayLength() == 0) return;
        var mlos = new List<string>();
        var kserve = new List<string>();
        foreach (var input in inputs.EnumerateArray())
        {
            var name = input.GetProperty("name").GetString()!;
            var datatype = input.GetProperty("datatype").GetString()!;
            var shape = input.GetProperty("shape").EnumerateArray().Select(d => Math.Max(1, d.GetInt64())).ToArray();
            long count = shape.Aggregate(1L, (a, b) => a * b);
            if (count > MaxValuesPerInput || datatype is "BYTES") return;
            var flat = $"[{string.Join(",", Enumerable.Range(0, (int)count).Select(i => Value(datatype, i)))}]";
            var nested = shape.Length == 2 && shape[0] == 1 ? $"[{flat}]" : flat;
            mlos.Add($"\"{name}\": {nested}");
            kserve.Add($$"""{"name":"{{name}}","shape":[{{string.Join(",", shape)}}],"datatype":"{{datatype}}","data":{{flat}}}""");
        }
        var id = Uri.EscapeDataString(model.Id);
        Console.WriteLine($"  curl -s {url}/models/{id}/inference -H 'Content-Type: application/json' -d '{{{string.Join(", ", mlos)}}}'");
        Console.WriteLine($"  curl -s {url}/v2/models/{id}/infer -H 'Content-Type: application/json' -d '{{\"inputs\":[{string.Join(",", kserve)}]}}'");
    }

    /// <summary>The i-th demo value of a datatype: decimals for floats, true/false for BOOL, small integers otherwise.</summary>
    private static string Value(string datatype, int i) => datatype switch
    {
        "BOOL" => i % 2 == 0 ? "true" : "false",
        _ when datatype.StartsWith("FP", StringComparison.Ordinal) || datatype == "BF16" => (0.1 * (i % 10)).ToString("0.0", CultureInfo.InvariantCulture),
        _ => (i % 10).ToString(CultureInfo.InvariantCulture),
    };
}
