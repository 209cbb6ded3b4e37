using System.Text;
using System.Text.Json;

namespace Mlos.Benchmarks.Server;

/// <summary>
/// A client of the KServe v2 binary tensor extension, for the sections that send requests from
/// this process: a request body is a JSON header and then the tensors' bytes, the header's length
/// in Inference-Header-Content-Length; so is an answer with binary outputs.
/// </summary>
internal static class RestBinary
{
    /// <summary>The body for <paramref name="header"/> (whose inputs give each tensor's binary_data_size) and the tensors' bytes.</summary>
    public static (byte[] Body, int HeaderLength) Body(string header, params byte[][] tensors)
    {
        var head = Encoding.UTF8.GetBytes(header);
        var body = new byte[head.Length + tensors.Sum(t => t.Length)];
        head.CopyTo(body, 0);
        int at = head.Length;
        foreach (var t in tensors)
        {
            t.CopyTo(body, at);
            at += t.Length;
        }
        return (body, head.Length);
    }

    /// <summary>Posts a body and reads the whole answer into <paramref name="into"/> (big enough: the caller knows the answer's size); its length and header length.</summary>
    public static async Task<(int Length, int HeaderLength)> Send(HttpClient http, string path, byte[] body, int headerLength, byte[] into)
    {
        using var request = Request(path, body, headerLength);
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await using var stream = await response.Content.ReadAsStreamAsync();
        int length = 0, n;
        while (length < into.Length && (n = await stream.ReadAsync(into.AsMemory(length))) > 0) length += n;
        if (length == into.Length && await stream.ReadAsync(new byte[1]) > 0) throw new InvalidOperationException($"POST {path}: the answer is longer than {into.Length} bytes");
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"POST {path}: {(int)response.StatusCode} {Encoding.UTF8.GetString(into, 0, length)}");
        return (length, HeaderLength(response));
    }

    /// <summary>Posts a body; the whole answer and its outputs by name (each a slice of it).</summary>
    public static async Task<(byte[] Answer, Dictionary<string, ReadOnlyMemory<byte>> Outputs)> Post(HttpClient http, string path, byte[] body, int headerLength)
    {
        using var request = Request(path, body, headerLength);
        using var response = await http.SendAsync(request);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"POST {path}: {(int)response.StatusCode} {Encoding.UTF8.GetString(bytes)}");
        return (bytes, Outputs(bytes, HeaderLength(response)));
    }

    /// <summary>An answer's binary outputs by name, in the order its header lists them.</summary>
    public static Dictionary<string, ReadOnlyMemory<byte>> Outputs(byte[] answer, int headerLength)
    {
        var outputs = new Dictionary<string, ReadOnlyMemory<byte>>();
        int at = headerLength;
        foreach (var o in JsonDocument.Parse(answer.AsMemory(0, headerLength)).RootElement.GetProperty("outputs").EnumerateArray())
        {
            int size = o.GetProperty("parameters").GetProperty("binary_data_size").GetInt32();
            outputs[o.GetProperty("name").GetString()!] = answer.AsMemory(at, size);
            at += size;
        }
        return outputs;
    }

    private static HttpRequestMessage Request(string path, byte[] body, int headerLength)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/octet-stream");
        request.Content.Headers.TryAddWithoutValidation("Inference-Header-Content-Length", headerLength.ToString());
        return request;
    }

    private static int HeaderLength(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Inference-Header-Content-Length", out var v) || response.Content.Headers.TryGetValues("Inference-Header-Content-Length", out v)
            ? int.Parse(v.Single()) : throw new InvalidOperationException("the answer has no Inference-Header-Content-Length");
}
