namespace Mlos.Benchmarks.Server;

/// <summary>
/// The result lines tests/bench/run.sh collects (tab-separated):
///   RATIO &lt;benchmark&gt; &lt;configuration&gt; &lt;measured&gt; &lt;baseline&gt; &lt;ratio&gt; &lt;goal, may be empty&gt;
///   HTTP  &lt;configuration&gt; &lt;connections&gt; &lt;req/s&gt; &lt;p50 ms&gt; &lt;p99 ms&gt; &lt;errors&gt;
///   FACT  &lt;section&gt; &lt;what&gt; &lt;value&gt;
/// </summary>
internal static class Report
{
    /// <summary>One load run (wrk's, h2load's or <see cref="ClientLoad"/>'s).</summary>
    public static void Http(LoadResult r) =>
        Console.WriteLine($"HTTP\t{r.Name}\t{r.Connections}\t{r.RequestsPerSecond:F0}\t{r.P50Ms:F3}\t{r.P99Ms:F3}\t{r.Errors}");

    public static void Ratio(string benchmark, string configuration, LoadResult value, LoadResult baseline, double ratio, string goal = "") =>
        Ratio(benchmark, configuration, value.ToString(), baseline.ToString(), ratio, goal);

    public static void Ratio(string benchmark, string configuration, string measured, string baseline, double ratio, string goal = "") =>
        Console.WriteLine($"RATIO\t{benchmark}\t{configuration}\t{measured}\t{baseline}\t{ratio:F3}\t{goal}");

    public static void Fact(string section, string what, string value) => Console.WriteLine($"FACT\t{section}\t{what}\t{value}");
}

/// <summary>Request bodies as files for wrk and h2load, in one folder; the values are fixed (seeded).</summary>
internal sealed class Bodies(string dir)
{
    /// <summary>The values as the little-endian bytes a tensor holds.</summary>
    public static byte[] FloatBytes(int n) => System.Runtime.InteropServices.MemoryMarshal.AsBytes(Floats(n).AsSpan()).ToArray();

    public static float[] Floats(int n)
    {
        var rng = new Random(3);
        return Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    /// <summary>KServe v2 binary: FP32[1,n] named <paramref name="input"/>, binary output asked for.</summary>
    public (string File, int HeaderLength) Binary(string name, string input, int n)
    {
        var values = Floats(n);
        var header = System.Text.Encoding.UTF8.GetBytes($$$"""{"inputs":[{"name":"{{{input}}}","shape":[1,{{{n}}}],"datatype":"FP32","parameters":{"binary_data_size":{{{n * 4}}}}}],"parameters":{"binary_data_output":true}}""");
        var file = Path.Combine(dir, $"{name}.bin");
        File.WriteAllBytes(file, [.. header, .. values.SelectMany(BitConverter.GetBytes)]);
        return (file, header.Length);
    }

    /// <summary>
    /// One gRPC message as an HTTP/2 request body carries it (h2load sends the file as it is): the
    /// length-prefixed message, 1 byte 0 (not compressed), 4 bytes big-endian length, the message.
    /// </summary>
    public string Grpc(string name, Google.Protobuf.IMessage message)
    {
        var bytes = Google.Protobuf.MessageExtensions.ToByteArray(message);
        var framed = new byte[5 + bytes.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1), (uint)bytes.Length);
        bytes.CopyTo(framed, 5);
        var file = Path.Combine(dir, $"{name}.grpc");
        File.WriteAllBytes(file, framed);
        return file;
    }

    /// <summary>KServe v2 JSON: FP32[1,n] named <paramref name="input"/>.</summary>
    public string Json(string name, string input, int n)
    {
        var file = Path.Combine(dir, $"{name}.json");
        File.WriteAllText(file, $$"""{"inputs":[{"name":"{{input}}","shape":[1,{{n}}],"datatype":"FP32","data":[{{string.Join(",", Floats(n).Select(f => f.ToString(System.Globalization.CultureInfo.InvariantCulture)))}}]}]}""");
        return file;
    }
}
