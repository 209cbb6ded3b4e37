using System.Net;
using System.Text.Json;

namespace Mlos.Server.Tests;

/// <summary>A KServe v2 binary-data request (a JSON header, then the inputs' bytes) and its outputs by name, as raw bytes.</summary>
public static class BinaryInfer
{
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
