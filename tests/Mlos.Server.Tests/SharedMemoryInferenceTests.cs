using System.Net;
using System.Text;
using System.Text.Json;
using Google.Protobuf;
using Grpc.Core;
using Mlos.Server.Grpc.Protocol;
using Mlos.Tests;
using static Mlos.Server.Grpc.Protocol.ModelInferRequest.Types;

namespace Mlos.Server.Tests;

/// <summary>
/// Tensors through system shared memory, end to end: this process creates the objects, writes
/// inputs into them, registers them, and reads the outputs the server wrote there; the bytes are
/// those REST binary answers for the same inputs. Over REST and gRPC.
/// </summary>
public sealed class SharedMemoryInferenceTests : IClassFixture<SharedMemoryInferenceTests.Server>
{
    public sealed class Server() : GrpcServer(
        [("multi", "multi_io.onnx"), ("strings", "strings.onnx"), ("mlp", "mlp.onnx"), ("dtypes", "dtypes.onnx")], "--allow-shared-memory");

    private readonly Server _server;
    private HttpClient Http => _server.Process.Client;

    public SharedMemoryInferenceTests(Server server) => _server = server;

    // multi_io's inputs: input_ids INT64 [2,8] (128 bytes) and features FP32 [2,4] (32 bytes).
    private static readonly long[] Ids = [27, 88, 81, 88, 65, 69, 15, 16, 12, 32, 59, 64, 70, 0, 0, 0];
    private static readonly float[] Features = [-0.145f, 0.47f, 0.4267f, 0.6845f, -1.39f, 1.6f, -0.4978f, 0.013f];
    private static byte[] IdBytes => Ids.SelectMany(BitConverter.GetBytes).ToArray();
    private static byte[] FeatureBytes => Features.SelectMany(BitConverter.GetBytes).ToArray();

    private static void Write(ShmObject shm, long offset, byte[] bytes)
    {
        using var f = new FileStream(shm.Path, FileMode.Open, FileAccess.Write);
        f.Position = offset;
        f.Write(bytes);
    }

    private static byte[] Read(ShmObject shm, long offset, int count) => File.ReadAllBytes(shm.Path)[(int)offset..(int)(offset + count)];

    private async Task Register(string name, ShmObject shm, long bytes)
    {
        using var r = await Http.PostAsync($"/v2/systemsharedmemory/region/{name}/register",
            new StringContent($$"""{"key":"{{shm.Key}}","offset":0,"byte_size":{{bytes}}}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    }

    private async Task Unregister(string name) => (await Http.PostAsync($"/v2/systemsharedmemory/region/{name}/unregister", null)).Dispose();

    /// <summary>What REST binary answers for multi_io's inputs: the reference every other way is held to.</summary>
    private Task<Dictionary<string, byte[]>> RestBinary()
    {
        var head = Encoding.UTF8.GetBytes("""
            {"inputs":[{"name":"input_ids","shape":[2,8],"datatype":"INT64","parameters":{"binary_data_size":128}},
                       {"name":"features","shape":[2,4],"datatype":"FP32","parameters":{"binary_data_size":32}}],
             "parameters":{"binary_data_output":true}}
            """);
        return BinaryInfer.Post(Http, "multi", head, [.. IdBytes, .. FeatureBytes]);
    }

    /// <summary>
    /// Every ONNX fixture's reference inputs through shared memory (REST): each input at its own
    /// offset of one region, each output into its own offset of another; the bytes written there
    /// are REST binary's (which the gRPC tests hold to gRPC raw, typed and REST JSON).
    /// </summary>
    [Theory]
    [MemberData(nameof(RefTensor.Fixtures), MemberType = typeof(RefTensor))]
    public async Task Every_fixture_answers_rest_binarys_bytes_through_shared_memory(string model, string refFile)
    {
        var tensors = RefTensor.Read(refFile);
        var inputs = tensors.Where(t => t.Role == "in").ToArray();
        var reference = await BinaryInfer.Post(Http, model, inputs);

        using var input = new ShmObject(1 << 16);
        using var output = new ShmObject(1 << 16);
        string region = $"all-{model}";
        var json = new StringBuilder("{\"inputs\":[");
        long at = 0;
        foreach (var t in inputs)
        {
            var bytes = t.Bytes();
            Write(input, at, bytes);
            json.Append($$$"""{"name":"{{{t.Name}}}","shape":[{{{string.Join(",", t.Shape)}}}],"datatype":"{{{t.Dtype}}}","parameters":{"shared_memory_region":"{{{region}}}-in","shared_memory_byte_size":{{{bytes.Length}}},"shared_memory_offset":{{{at}}}}},""");
            at += (bytes.Length + 63) / 64 * 64 + 64; // apart, and not aligned to each other's ends
        }
        json.Length--;
        json.Append("],\"outputs\":[");
        var placed = new Dictionary<string, (long Offset, int Size)>();
        at = 8;
        foreach (var (name, bytes) in reference)
        {
            placed[name] = (at, bytes.Length);
            json.Append($$$"""{"name":"{{{name}}}","parameters":{"shared_memory_region":"{{{region}}}-out","shared_memory_byte_size":{{{bytes.Length}}},"shared_memory_offset":{{{at}}}}},""");
            at += bytes.Length + 72;
        }
        json.Length--;
        json.Append("]}");
        await Register(region + "-in", input, 1 << 16);
        await Register(region + "-out", output, 1 << 16);
        try
        {
            using var r = await Http.PostAsync($"/v2/models/{model}/infer", new StringContent(json.ToString(), Encoding.UTF8, "application/json"));
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, text);
            Assert.Equal(reference.Count, placed.Count);
            foreach (var (name, (offset, size)) in placed)
                Assert.Equal(reference[name], Read(output, offset, size));
        }
        finally
        {
            await Unregister(region + "-in");
            await Unregister(region + "-out");
        }
    }

    [Fact]
    public async Task Rest_reads_inputs_from_and_writes_outputs_into_regions_bit_for_bit()
    {
        Assert.Contains("system_shared_memory", await Http.GetStringAsync("/v2")); // listed once it is on
        using var input = new ShmObject(4096);
        using var output = new ShmObject(4096);
        Write(input, 0, IdBytes);
        Write(input, 256, FeatureBytes);
        await Register("rest-in", input, 4096);
        await Register("rest-out", output, 4096);
        try
        {
            var json = """
                {"id":"shm1","inputs":[
                   {"name":"input_ids","shape":[2,8],"datatype":"INT64","parameters":{"shared_memory_region":"rest-in","shared_memory_byte_size":128}},
                   {"name":"features","shape":[2,4],"datatype":"FP32","parameters":{"shared_memory_region":"rest-in","shared_memory_byte_size":32,"shared_memory_offset":256}}],
                 "outputs":[{"name":"logits","parameters":{"shared_memory_region":"rest-out","shared_memory_byte_size":24,"shared_memory_offset":1024}},
                            {"name":"ids_sum","parameters":{"shared_memory_region":"rest-out","shared_memory_byte_size":16}}]}
                """;
            using var r = await Http.PostAsync("/v2/models/multi/infer", new StringContent(json, Encoding.UTF8, "application/json"));
            var text = await r.Content.ReadAsStringAsync();
            Assert.True(r.StatusCode == HttpStatusCode.OK, text);
            var answer = JsonDocument.Parse(text).RootElement;
            Assert.Equal("shm1", answer.GetProperty("id").GetString());
            var outputs = answer.GetProperty("outputs").EnumerateArray().ToArray();
            Assert.Equal(["logits", "ids_sum"], outputs.Select(o => o.GetProperty("name").GetString()).Order().Reverse());
            Assert.All(outputs, o =>
            {
                Assert.False(o.TryGetProperty("data", out _));
                Assert.Equal("rest-out", o.GetProperty("parameters").GetProperty("shared_memory_region").GetString());
            });
            var reference = await RestBinary();
            Assert.Equal(reference["logits"], Read(output, 1024, 24));
            Assert.Equal(reference["ids_sum"], Read(output, 0, 16));
        }
        finally
        {
            await Unregister("rest-in");
            await Unregister("rest-out");
        }
    }

    private static ModelInferRequest SharedRequest(string inRegion, string outRegion, long outputBytes = 24)
    {
        var r = new ModelInferRequest { ModelName = "multi", Id = "g-shm" };
        InferInputTensor Input(string name, string dtype, long size, long offset, params long[] shape)
        {
            var t = new InferInputTensor { Name = name, Datatype = dtype };
            t.Shape.AddRange(shape);
            t.Parameters.Add("shared_memory_region", new InferParameter { StringParam = inRegion });
            t.Parameters.Add("shared_memory_byte_size", new InferParameter { Int64Param = size });
            t.Parameters.Add("shared_memory_offset", new InferParameter { Int64Param = offset });
            return t;
        }
        r.Inputs.Add(Input("input_ids", "INT64", 128, 0, 2, 8));
        r.Inputs.Add(Input("features", "FP32", 32, 256, 2, 4));
        var logits = new InferRequestedOutputTensor { Name = "logits" };
        logits.Parameters.Add("shared_memory_region", new InferParameter { StringParam = outRegion });
        logits.Parameters.Add("shared_memory_byte_size", new InferParameter { Uint64Param = (ulong)outputBytes });
        r.Outputs.Add(logits);
        r.Outputs.Add(new InferRequestedOutputTensor { Name = "mask" }); // raw, next to a shared one
        return r;
    }

    [Fact]
    public async Task Grpc_reads_and_writes_regions_and_mixes_them_with_raw_outputs()
    {
        using var input = new ShmObject(4096);
        using var output = new ShmObject(4096);
        Write(input, 0, IdBytes);
        Write(input, 256, FeatureBytes);
        var client = _server.Client;
        await client.SystemSharedMemoryRegisterAsync(new SystemSharedMemoryRegisterRequest { Name = "g-in", Key = input.Key, ByteSize = 4096 });
        await client.SystemSharedMemoryRegisterAsync(new SystemSharedMemoryRegisterRequest { Name = "g-out", Key = output.Key, ByteSize = 4096 });
        try
        {
            var status = await client.SystemSharedMemoryStatusAsync(new SystemSharedMemoryStatusRequest { Name = "g-in" });
            Assert.Equal(input.Key, status.Regions["g-in"].Key);
            var answer = await client.ModelInferAsync(SharedRequest("g-in", "g-out"));
            Assert.Equal(["logits", "mask"], answer.Outputs.Select(o => o.Name).Order());
            Assert.Equal(answer.Outputs.Count, answer.RawOutputContents.Count);
            var reference = await RestBinary();
            int logits = answer.Outputs.ToList().FindIndex(o => o.Name == "logits");
            Assert.Equal("g-out", answer.Outputs[logits].Parameters["shared_memory_region"].StringParam);
            Assert.Equal(0, answer.RawOutputContents[logits].Length);
            Assert.Equal(reference["logits"], Read(output, 0, 24));
            Assert.Equal(reference["mask"], answer.RawOutputContents[1 - logits].ToByteArray());

            // A region too small for its output, and one never registered: the client's mistakes.
            var small = await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(SharedRequest("g-in", "g-out", outputBytes: 8)).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, small.StatusCode);
            Assert.Contains("has 24 bytes", small.Status.Detail);
            var unknown = await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(SharedRequest("nope", "g-out")).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
            var past = SharedRequest("g-in", "g-out");
            past.Inputs[1].Parameters["shared_memory_offset"] = new InferParameter { Int64Param = 4090 };
            Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => client.ModelInferAsync(past).ResponseAsync)).StatusCode);
        }
        finally
        {
            await client.SystemSharedMemoryUnregisterAsync(new SystemSharedMemoryUnregisterRequest { Name = "g-in" });
            await client.SystemSharedMemoryUnregisterAsync(new SystemSharedMemoryUnregisterRequest { Name = "g-out" });
        }
    }

    [Fact]
    public async Task An_object_made_smaller_after_registration_is_a_client_error_not_a_crash()
    {
        using var input = new ShmObject(4096);
        using var output = new ShmObject(4096);
        Write(input, 0, IdBytes);
        Write(input, 256, FeatureBytes);
        await Register("shrink-in", input, 4096);
        await Register("shrink-out", output, 4096);
        try
        {
            Assert.Single((await _server.Client.ModelInferAsync(SharedRequest("shrink-in", "shrink-out"))).Outputs, o => o.Name == "logits");
            // A mapped page past the new end would be SIGBUS for the whole server.
            using (var f = new FileStream(input.Path, FileMode.Open, FileAccess.Write)) f.SetLength(100);
            var e = await Assert.ThrowsAsync<RpcException>(() => _server.Client.ModelInferAsync(SharedRequest("shrink-in", "shrink-out")).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
            Assert.Contains("made smaller", e.Status.Detail);
            using (var f = new FileStream(output.Path, FileMode.Open, FileAccess.Write)) f.SetLength(0);
            using (var f = new FileStream(input.Path, FileMode.Open, FileAccess.Write)) f.SetLength(4096);
            Write(input, 0, IdBytes);
            Write(input, 256, FeatureBytes);
            // Writing past the end grows the object again (pwrite), as writing a file does: the answer lands.
            await _server.Client.ModelInferAsync(SharedRequest("shrink-in", "shrink-out"));
            Assert.True((await _server.Client.ServerLiveAsync(new ServerLiveRequest())).Live);
        }
        finally
        {
            await Unregister("shrink-in");
            await Unregister("shrink-out");
        }
    }

    [Fact]
    public async Task A_client_rewriting_its_region_during_requests_cannot_break_the_server()
    {
        // Inputs are copied out of the region before the core checks them: random bytes written
        // while requests run are either refused or answered, and the server serves on.
        using var input = new ShmObject(4096);
        using var output = new ShmObject(4096);
        Write(input, 0, IdBytes);
        Write(input, 256, FeatureBytes);
        await Register("copy-in", input, 4096);
        await Register("copy-out", output, 4096);
        try
        {
            var reference = await RestBinary();
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            var scribbler = Task.Run(() =>
            {
                var garbage = new byte[160];
                var rng = new Random(7);
                while (!stop.IsCancellationRequested)
                {
                    rng.NextBytes(garbage);
                    Write(input, 0, garbage[..128]);
                    Write(input, 256, garbage[128..]);
                }
                Write(input, 0, IdBytes);
                Write(input, 256, FeatureBytes);
            });
            int answered = 0;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await _server.Client.ModelInferAsync(SharedRequest("copy-in", "copy-out"));
                    answered++;
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.InvalidArgument) { } // garbage a model check refused
            }
            await scribbler;
            Assert.True((await _server.Client.ServerLiveAsync(new ServerLiveRequest())).Live);
            await _server.Client.ModelInferAsync(SharedRequest("copy-in", "copy-out"));
            Assert.Equal(reference["logits"], Read(output, 0, 24));
            Assert.True(answered > 0);
        }
        finally
        {
            await Unregister("copy-in");
            await Unregister("copy-out");
        }
    }

    [Fact]
    public async Task A_bytes_input_from_shared_memory_is_checked_and_answered()
    {
        using var input = new ShmObject(4096);
        var hello = Encoding.UTF8.GetBytes("hello");
        Write(input, 0, [.. BitConverter.GetBytes(hello.Length), .. hello]);
        await Register("bytes-in", input, 4096);
        try
        {
            var r = new ModelInferRequest { ModelName = "strings" };
            var t = new InferInputTensor { Name = "text", Datatype = "BYTES" };
            t.Shape.Add(1);
            t.Parameters.Add("shared_memory_region", new InferParameter { StringParam = "bytes-in" });
            t.Parameters.Add("shared_memory_byte_size", new InferParameter { Int64Param = 9 });
            r.Inputs.Add(t);
            var answer = await _server.Client.ModelInferAsync(r);
            Assert.Equal([.. BitConverter.GetBytes(5), .. "HELLO"u8.ToArray()], answer.RawOutputContents[0].ToByteArray());
            // A length prefix that claims more than the range holds is refused before the plugin reads it.
            Write(input, 0, BitConverter.GetBytes(4000));
            var e = await Assert.ThrowsAsync<RpcException>(() => _server.Client.ModelInferAsync(r).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        }
        finally { await Unregister("bytes-in"); }
    }

    [Fact]
    public async Task Unregistering_while_requests_use_a_region_fails_none_of_them_unsafely()
    {
        using var input = new ShmObject(4096);
        using var output = new ShmObject(4096);
        Write(input, 0, IdBytes);
        Write(input, 256, FeatureBytes);
        var client = _server.Client;
        await client.SystemSharedMemoryRegisterAsync(new SystemSharedMemoryRegisterRequest { Name = "race-out", Key = output.Key, ByteSize = 4096 });
        var reference = await RestBinary();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(3));
        var churn = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await client.SystemSharedMemoryRegisterAsync(new SystemSharedMemoryRegisterRequest { Name = "race-in", Key = input.Key, ByteSize = 4096 });
                await client.SystemSharedMemoryUnregisterAsync(new SystemSharedMemoryUnregisterRequest { Name = "race-in" });
            }
        });
        int ok = 0, missing = 0;
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await client.ModelInferAsync(SharedRequest("race-in", "race-out"));
                    Interlocked.Increment(ref ok);
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.NotFound) { Interlocked.Increment(ref missing); }
            }
        })).ToArray();
        await Task.WhenAll([churn, .. workers]);
        Assert.True(ok > 0 && missing > 0, $"{ok} answered, {missing} found no region");
        Assert.Equal(reference["logits"], Read(output, 0, 24));
        await client.SystemSharedMemoryUnregisterAsync(new SystemSharedMemoryUnregisterRequest());
        // Every lease given back: the server holds neither object open any more.
        Assert.False(input.HeldBy(_server.Process.Pid));
        Assert.False(output.HeldBy(_server.Process.Pid));
    }
}
