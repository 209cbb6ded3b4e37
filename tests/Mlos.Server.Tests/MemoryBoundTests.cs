using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using Mlos.Tests;
using Xunit.Abstractions;

namespace Mlos.Server.Tests;

/// <summary>
/// Memory for a request is bounded and given back: one large request peaks at a few times its
/// body, and after a burst of them the server's RSS returns close to where it was. Measured from
/// /proc (VmRSS, and VmHWM reset through clear_refs), on the real server and the ONNX MLP.
/// </summary>
public class MemoryBoundTests(ITestOutputHelper output)
{
    private const int Rows = 250_000; // 4 M floats: a ~34 MB JSON body

    private static long Status(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        throw new InvalidOperationException($"no {field} in /proc/{pid}/status");
    }

    private static string Rows16(int rows)
    {
        var sb = new StringBuilder(rows * 16 * 9);
        var random = new Random(7);
        for (int r = 0; r < rows; r++)
        {
            sb.Append(r == 0 ? "[" : ",[");
            for (int c = 0; c < 16; c++)
            {
                if (c > 0) sb.Append(',');
                sb.Append((random.NextDouble() * 2 - 1).ToString("0.#####", CultureInfo.InvariantCulture));
            }
            sb.Append(']');
        }
        return sb.ToString();
    }

    [Fact]
    public async Task Large_bodies_peak_at_a_few_times_their_size_and_their_memory_comes_back()
    {
        var root = Directory.CreateTempSubdirectory("mlos-memory-").FullName;
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(root, "mlp.onnx"));
        try
        {
            using var server = new ServerProcess(root, "--max-body-mb", "128");
            using var http = new HttpClient { BaseAddress = server.Client.BaseAddress, Timeout = TimeSpan.FromMinutes(2) };
            var reg = await http.PostAsync("/models/register",
                new StringContent("""{"model_id":"big","path":"mlp.onnx"}""", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, reg.StatusCode);

            var rows = Rows16(Rows);
            var mlos = Encoding.UTF8.GetBytes($$"""{"input":[{{rows}}]}""");
            var kserve = Encoding.UTF8.GetBytes($$"""{"inputs":[{"name":"input","shape":[{{Rows}},16],"datatype":"FP32","data":[{{rows}}]}]}""");
            rows = null;

            async Task Send(string path, byte[] body, int rows = Rows)
            {
                using var content = new ByteArrayContent(body);
                content.Headers.ContentType = new("application/json");
                using var response = await http.PostAsync(path, content);
                var text = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, text.Length > 300 ? text[..300] : text);
                Assert.Contains($"[{rows},4]", text);
            }

            // Warm up on small requests, so that what is measured is the large ones.
            await Send("/models/big/inference", Encoding.UTF8.GetBytes($$"""{"input":[{{Rows16(1)}}]}"""), rows: 1);
            await Send("/v2/models/big/infer", Encoding.UTF8.GetBytes($$"""{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[{{Rows16(1)}}]}]}"""), rows: 1);
            await Task.Delay(1000);
            long before = Status(server.Pid, "VmRSS");
            File.WriteAllText($"/proc/{server.Pid}/clear_refs", "5"); // resets VmHWM to the current RSS

            await Send("/models/big/inference", mlos);
            long peakMlos = Status(server.Pid, "VmHWM") - before;
            // Freed large blocks are kept a second for reuse (TensorMemory, bounded): what one
            // request peaks at is measured once the previous one's are given back.
            await Task.Delay(3500); // past the worst case (a block freed just after a tick waits two ticks), with room for a late timer
            File.WriteAllText($"/proc/{server.Pid}/clear_refs", "5");
            await Send("/v2/models/big/infer", kserve);
            long peakKserve = Status(server.Pid, "VmHWM") - before;

            for (int i = 0; i < 3; i++)
            {
                await Send("/models/big/inference", mlos);
                await Send("/v2/models/big/infer", kserve);
            }
            // Side by side, each request gets a scratch of its own: the pool must not keep their memory.
            await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => Send("/v2/models/big/infer", kserve)));
            long afterBurst = Status(server.Pid, "VmRSS");
            long settled = afterBurst;
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(10) && settled > before + (50L << 20))
            {
                await Task.Delay(250);
                settled = Status(server.Pid, "VmRSS");
            }
            output.WriteLine($"body {mlos.Length >> 20} MB (MLOS) / {kserve.Length >> 20} MB (KServe); RSS before {before >> 20} MB; " +
                $"peak above it {peakMlos >> 20} MB (MLOS), {peakKserve >> 20} MB (KServe); after 11 large requests (3 at once) {afterBurst >> 20} MB; " +
                $"after {clock.Elapsed.TotalSeconds:0.0} s {settled >> 20} MB");
            Assert.True(peakMlos <= 3L * mlos.Length, $"MLOS route peaked {peakMlos >> 20} MB above its start for a {mlos.Length >> 20} MB body");
            Assert.True(peakKserve <= 3L * kserve.Length, $"KServe route peaked {peakKserve >> 20} MB above its start for a {kserve.Length >> 20} MB body");
            Assert.True(settled <= before + (50L << 20), $"RSS {settled >> 20} MB 10 s after the burst; it was {before >> 20} MB before");
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Fact]
    public async Task Grpc_answers_give_their_memory_back_whether_written_or_abandoned()
    {
        // gRPC answers wrap the outputs' memory (no copy) until written: read or not, it must come back.
        var root = Directory.CreateTempSubdirectory("mlos-memory-").FullName;
        File.Copy(Path.Combine(BuildTree.Models("onnx"), "mlp.onnx"), Path.Combine(root, "mlp.onnx"));
        try
        {
            using var server = new ServerProcess(root, "--model", "mlp=mlp.onnx", "--grpc-max-message-mb", "32");
            using var channel = server.Grpc();
            var client = new Grpc.Protocol.GRPCInferenceService.GRPCInferenceServiceClient(channel);
            const int rows = 150_000; // 9.6 MB in, 2.4 MB out
            var request = new Grpc.Protocol.ModelInferRequest { ModelName = "mlp" };
            request.Inputs.Add(new Grpc.Protocol.ModelInferRequest.Types.InferInputTensor { Name = "input", Datatype = "FP32", Shape = { rows, 16 } });
            request.RawInputContents.Add(Google.Protobuf.ByteString.CopyFrom(new byte[rows * 16 * 4]));
            Assert.Equal(rows * 4 * 4, (await client.ModelInferAsync(request)).RawOutputContents[0].Length);
            await Task.Delay(1500); // the warm-up's blocks decay
            long before = Status(server.Pid, "VmRSS");

            for (int i = 0; i < 10; i++)
                Assert.Equal(rows * 4 * 4, (await client.ModelInferAsync(request)).RawOutputContents[0].Length);
            int abandoned = 0;
            for (int i = 0; i < 30; i++)
            {
                // Cancelled at 2 to 60 ms: some before the server has the request, some while the
                // model runs, some while the answer is on its way.
                using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(2 + 2 * i));
                try { await client.ModelInferAsync(request, cancellationToken: cancel.Token); }
                // A cancel that lands while the client is still starting the call aborts its HTTP/2
                // request, which Grpc.Net.Client reports as UNAVAILABLE: abandoned all the same.
                catch (global::Grpc.Core.RpcException e) when (e.StatusCode == global::Grpc.Core.StatusCode.Cancelled
                    || (e.StatusCode == global::Grpc.Core.StatusCode.Unavailable && cancel.IsCancellationRequested)) { abandoned++; }
            }
            long settled = Status(server.Pid, "VmRSS");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(10) && settled > before + (60L << 20))
            {
                await Task.Delay(250);
                settled = Status(server.Pid, "VmRSS");
            }
            output.WriteLine($"RSS before {before >> 20} MB; after 10 answers read and 30 calls cancelled ({abandoned} before the answer) {settled >> 20} MB");
            Assert.True(abandoned > 0, "no call was cancelled before its answer: the test tested nothing");
            Assert.True(settled <= before + (60L << 20), $"RSS {settled >> 20} MB after the calls; it was {before >> 20} MB before (12 MB a call kept)");
            Assert.True((await client.ServerLiveAsync(new())).Live);
        }
        finally { Directory.Delete(root, recursive: true); }
    }
}
