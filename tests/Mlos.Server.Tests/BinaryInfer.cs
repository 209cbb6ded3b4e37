using System.Net;
using System.Text.Json;

namespace Mlos.Server.Tests;

/// <summary>A KServe v2 binary-data request (a JSON header, then the inputs' bytes) and its outputs by name, as raw bytes.</summary>
public static class BinaryInfer
{
    /// <summary>The request for a fixture's reference inputs, all outputs asked for as binary.</summary>
    public static Task<Dictionary<string, byte[]>> Post(HttpClient http, string model, RefTensor[] inputs)
    {
        var header = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["inputs"] = inputs.Select(t => new Dictionary<string, object>
            {
                ["name"] = t.Name, ["shape"] = t.Shape, ["datatype"] = t.Dtype,
                ["parameters"] = new Dictionary<string, object> { ["binary_data_size"] = t.Bytes().Length },
            }).ToArray(),
            ["parameters"] = new Dictionary<string, object> { ["binary_data_output"] = true },
        });
        return Post(http, model, System.Text.Encoding.UTF8.GetBytes(header), inputs.SelectMany(t => t.Bytes()).ToArray());
    }

    public static async Task<Dictionary<string, byte[]>> Post(HttpClient http, string model, byte[] header, byte[] inputs)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v2/models/{model}/infer") { Content = new ByteArrayContent([.. header, .. inputs]) };
        request.Content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", header.Length.ToString());
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        int length = int.Parse(response.Headers.GetValues("Inference-Header-Content-Length").Single());
        var bytes = await response.Content.ReadAsByteArrayAsync();
        var outputs = new Dictionary<string, byte[]>();
        int at = length;
        foreach (var o in JsonDocument.Parse(bytes.AsMemory(0, length)).RootElement.GetProperty("outputs").EnumerateArray())
        {
            int size = o.GetProperty("parameters").GetProperty("binary_data_size").GetInt32();
            outputs[o.GetProperty("name").GetString()!] = bytes[at..(at + size)];
            at += size;
        }
        return outputs;
    }
}
