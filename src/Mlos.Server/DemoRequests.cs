using System.Globalization;
using System.Text.Json;
using Mlos.Core;
using Mlos.Core.Models;

namespace Mlos.Server;

/// <summary>Ready-to-paste curl lines for a loaded model, MLOS and KServe v2, shaped from its first input.</summary>
internal static class DemoRequests
{
    public static void Print(string url, Model model)
    {
        using var info = JsonDocument.Parse(RegistryJson.ModelInfo(model));
        if (!info.RootElement.TryGetProperty("inputs", out var inputs) || inputs.GetArrayLength() == 0) return;
        var input = inputs[0];
        var name = input.GetProperty("name").GetString()!;
        var datatype = input.GetProperty("datatype").GetString()!;
        var shape = input.GetProperty("shape").EnumerateArray().Select(d => Math.Max(1, d.GetInt64())).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        if (count > 64 || datatype is "BYTES") return;
        var values = string.Join(",", Enumerable.Range(0, (int)count).Select(i =>
            datatype.StartsWith("FP", StringComparison.Ordinal) ? (0.1 * (i % 10)).ToString("0.0", CultureInfo.InvariantCulture) : (i % 10).ToString(CultureInfo.InvariantCulture)));
        var id = Uri.EscapeDataString(model.Id);
        var flat = $"[{values}]";
        var nested = shape.Length == 2 && shape[0] == 1 ? $"[{flat}]" : flat;
        var mlos = $$"""{"{{name}}": {{nested}}}""";
        var kserve = $$"""{"inputs":[{"name":"{{name}}","shape":[{{string.Join(",", shape)}}],"datatype":"{{datatype}}","data":{{flat}}}]}""";
        Console.WriteLine($"  curl -s {url}/models/{id}/inference -H 'Content-Type: application/json' -d '{mlos}'");
        Console.WriteLine($"  curl -s {url}/v2/models/{id}/infer -H 'Content-Type: application/json' -d '{kserve}'");
    }
}
