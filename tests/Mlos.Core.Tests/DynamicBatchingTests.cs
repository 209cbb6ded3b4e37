using System.Diagnostics;
using System.Runtime.InteropServices;
using Mlos.Core.Batching;
using Mlos.Core.Models;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// Dynamic batching against the real plugins: the C# echo plugin (whose answer shows any row
/// that went astray), the ONNX Runtime plugin on the MLP fixture, and a Python class through the
/// bridge that fails on purpose.
/// </summary>
[Collection(PluginCollection.Name)]
public unsafe class DynamicBatchingTests
{
    private static string Batching(int max, int delayUs) =>
        $$$"""{"dynamic_batching":{"max_batch_size":{{{max}}},"max_queue_delay_us":{{{delayUs}}}}}""";

    /// <summary>A typed request of FP32 rows; <see cref="Output"/> is the plugin's first output.</summary>
    private sealed class Request(string inputName, float[] data, int rows, int width, int outputBufferBytes = 0)
    {
        public float[] Data { get; } = data;
        public float[]? Output;
        public long[]? OutputShape;
        public nint OutputAddress;
        public InferTiming Timing;

        public void Run(MlosCore core, Model model)
        {
            var input = new SmiTensor { Name = Utf8.Intern(inputName), Dtype = SmiDtype.Fp32, NDim = 2, ByteSize = (nuint)(Data.Length * 4) };
            input.Shape[0] = rows;
            input.Shape[1] = width;
            var outputs = new SmiTensor[4];
            var buffer = outputBufferBytes > 0 ? (byte*)NativeMemory.Alloc((nuint)outputBufferBytes) : null;
            if (buffer != null)
            {
                outputs[0].Data = buffer;
                outputs[0].ByteSize = (nuint)outputBufferBytes;
            }
            try
            {
                fixed (float* d = Data)
                fixed (SmiTensor* o = outputs)
                {
                    input.Data = d;
                    nuint n = 4;
                    Timing = core.Infer(model, &input, 1, o, &n);
                    Output = new ReadOnlySpan<float>(o->Data, (int)(o->ByteSize / 4)).ToArray();
                    OutputShape = o->Dims.ToArray();
                    OutputAddress = (nint)o->Data;
                    Assert.True(buffer == null ? o->Release != null : o->Data == buffer && o->Release == null);
                    for (int i = 0; i < (int)n; i++)
                        if (o[i].Release != null) o[i].Release(&o[i]);
                }
            }
            finally { NativeMemory.Free(buffer); }
        }
    }

    /// <summary>Runs every request on its own thread, all released at once.</summary>
    private static Exception?[] RunTogether(MlosCore core, Model model, IReadOnlyList<Request> requests)
    {
        var errors = new Exception?[requests.Count];
        using var start = new Barrier(requests.Count);
        var threads = requests.Select((r, i) => new Thread(() =>
        {
            start.SignalAndWait();
            try { r.Run(core, model); }
            catch (Exception e) { errors[i] = e; }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        return errors;
    }

    private static float[] Rows(int seed, int rows, int width) =>
        Enumerable.Range(0, rows * width).Select(i => seed * 1000f + i).ToArray();

    [Fact]
    public void Merged_requests_get_exactly_their_own_rows_back()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("echo", "csharp-echo", null, Batching(16, 20_000));
        core.LoadModel("echo");
        // 48 requests of 1 to 3 rows, half into plugin-allocated outputs, half into our buffers.
        var requests = Enumerable.Range(0, 48).Select(i =>
        {
            int rows = 1 + i % 3;
            return new Request("x", Rows(i, rows, 4), rows, 4, outputBufferBytes: i % 2 == 0 ? 0 : 64);
        }).ToList();
        Assert.All(RunTogether(core, model, requests), e => Assert.Null(e));
        foreach (var r in requests)
        {
            Assert.Equal(r.Data, r.Output);
            Assert.Equal(new long[] { r.Data.Length / 4, 4 }, r.OutputShape);
        }
        var (batches, merged) = model.BatchCounts!.Value;
        Assert.Equal(48, merged);
        Assert.True(batches < 48, $"{batches} batches for 48 requests: nothing was merged");
        Assert.Contains(requests, r => r.Timing.BatchSize > 1);
    }

    [Fact]
    public void Merged_requests_get_their_rows_of_the_batch_output_without_a_copy()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("echo", "csharp-echo", null, Batching(8, 500_000));
        core.LoadModel("echo");
        var requests = Enumerable.Range(0, 8).Select(i => new Request("x", Rows(i, 1, 4), 1, 4)).ToList();
        Assert.All(RunTogether(core, model, requests), e => Assert.Null(e));
        foreach (var r in requests) Assert.Equal(r.Data, r.Output);
        // Each request's 16 bytes sit right after another's: rows of one block, not copies of their own.
        var merged = requests.Where(r => r.Timing.BatchSize > 1).ToList();
        Assert.NotEmpty(merged);
        Assert.All(merged, r => Assert.Contains(merged, s => s.OutputAddress == r.OutputAddress + 16 || r.OutputAddress == s.OutputAddress + 16));
    }

    /// <summary>
    /// Requests holding more than max_merge_bytes of input (1 MiB by default) never queue: they
    /// run at once, each alone, while requests at the limit still merge; 0 lifts the limit.
    /// </summary>
    [Fact]
    public void Requests_over_the_merge_byte_limit_run_at_once_on_their_own()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        const int atLimit = (int)(BatchingOptions.DefaultMaxMergeBytes / 4);
        var limited = core.RegisterModel("limited", "csharp-echo", null, Batching(8, 500_000));
        var unlimited = core.RegisterModel("unlimited", "csharp-echo", null,
            """{"dynamic_batching":{"max_batch_size":8,"max_queue_delay_us":500000,"max_merge_bytes":0}}""");
        core.LoadModel("limited");
        core.LoadModel("unlimited");
        Assert.Equal(BatchingOptions.DefaultMaxMergeBytes, limited.Batching!.MaxMergeBytes);

        List<Request> Big(int width) => Enumerable.Range(0, 6).Select(i => new Request("x", Rows(i, 1, width), 1, width)).ToList();
        var over = Big(atLimit + 1);
        Assert.All(RunTogether(core, limited, over), e => Assert.Null(e));
        Assert.All(over, r => Assert.Equal(r.Data, r.Output));
        Assert.All(over, r => Assert.Equal(1, r.Timing.BatchSize));
        Assert.Equal((0L, 0L), limited.BatchCounts!.Value); // none of them queued

        var at = Big(atLimit);
        Assert.All(RunTogether(core, limited, at), e => Assert.Null(e));
        Assert.All(at, r => Assert.Equal(r.Data, r.Output));
        Assert.Contains(at, r => r.Timing.BatchSize > 1);

        var anySize = Big(atLimit + 1);
        Assert.All(RunTogether(core, unlimited, anySize), e => Assert.Null(e));
        Assert.All(anySize, r => Assert.Equal(r.Data, r.Output));
        Assert.Contains(anySize, r => r.Timing.BatchSize > 1);
    }

    [Fact]
    public void Onnx_mlp_batched_answers_equal_unbatched_answers_exactly()
    {
        using var core = new MlosCore();
        core.LoadPlugin(Path.Combine(BuildTree.PluginDir, "libmlos_onnx_plugin.so"), config: """{"intra_op_threads":1}""");
        var mlp = Path.Combine(BuildTree.Models("onnx"), "mlp.onnx");
        var plain = core.RegisterModel("plain", "onnx-runtime", mlp, """{"dynamic_batching":false}""");
        var batched = core.RegisterModel("batched", "onnx-runtime", mlp, Batching(32, 20_000));
        core.LoadModel("plain");
        core.LoadModel("batched");
        var random = new Random(7);
        float[] Row() => Enumerable.Range(0, 16).Select(_ => (float)random.NextDouble() * 4 - 2).ToArray();
        var requests = Enumerable.Range(0, 24).Select(_ => new Request("input", Row(), 1, 16)).ToList();
        Assert.All(RunTogether(core, batched, requests), e => Assert.Null(e));
        Assert.Contains(requests, r => r.Timing.BatchSize > 1);
        foreach (var r in requests)
        {
            var alone = new Request("input", r.Data, 1, 16);
            alone.Run(core, plain);
            Assert.Equal(alone.Output, r.Output); // bit for bit
        }
    }

    [Fact]
    public void Requests_of_different_shapes_never_share_a_batch()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("echo", "csharp-echo", null, Batching(64, 300_000));
        core.LoadModel("echo");
        var narrow = Enumerable.Range(0, 6).Select(i => new Request("x", Rows(i, 1, 4), 1, 4)).ToList();
        var wide = Enumerable.Range(0, 6).Select(i => new Request("x", Rows(i + 10, 1, 8), 1, 8)).ToList();
        var renamed = Enumerable.Range(0, 6).Select(i => new Request("y", Rows(i + 20, 1, 4), 1, 4)).ToList();
        var all = narrow.Concat(wide).Concat(renamed).ToList();
        Assert.All(RunTogether(core, model, all), e => Assert.Null(e));
        foreach (var r in all)
        {
            Assert.Equal(r.Data, r.Output);
            Assert.InRange(r.Timing.BatchSize, 1, 6); // a batch holds one signature's requests only
        }
    }

    [Fact]
    public void A_lone_request_waits_the_delay_and_a_full_batch_does_not()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var slow = core.RegisterModel("slow", "csharp-echo", null, Batching(4, 200_000));
        var full = core.RegisterModel("full", "csharp-echo", null, Batching(4, 10_000_000));
        core.LoadModel("slow");
        core.LoadModel("full");

        var lone = new Request("x", Rows(1, 1, 4), 1, 4);
        var clock = Stopwatch.StartNew();
        lone.Run(core, slow);
        Assert.True(lone.Timing.QueueMicroseconds >= 200_000, $"queued {lone.Timing.QueueMicroseconds} µs, less than the 200 ms delay");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"a 200 ms delay took {clock.Elapsed}");
        Assert.Equal(1, lone.Timing.BatchSize);

        // Four rows fill the batch: it runs at once, not after the 10 s delay.
        clock.Restart();
        var four = Enumerable.Range(0, 4).Select(i => new Request("x", Rows(i, 1, 4), 1, 4)).ToList();
        Assert.All(RunTogether(core, full, four), e => Assert.Null(e));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"a full batch waited {clock.Elapsed}");
        Assert.All(four, r => Assert.Equal(4, r.Timing.BatchSize));
    }

    /// <summary>A batch that reaches a preferred size runs at once (Triton's preferred_batch_size), not after the delay.</summary>
    [Fact]
    public void A_batch_of_a_preferred_size_does_not_wait_the_delay()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("echo", "csharp-echo", null,
            """{"dynamic_batching":{"max_batch_size":8,"max_queue_delay_us":10000000,"preferred_batch_sizes":[3]}}""");
        core.LoadModel("echo");
        Assert.Equal([3], model.Batching!.PreferredBatchSizes);
        var clock = Stopwatch.StartNew();
        var three = Enumerable.Range(0, 3).Select(i => new Request("x", Rows(i, 1, 4), 1, 4)).ToList();
        Assert.All(RunTogether(core, model, three), e => Assert.Null(e));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"a batch of the preferred size waited {clock.Elapsed}");
        Assert.All(three, r => Assert.Equal(3, r.Timing.BatchSize));
        Assert.All(three, r => Assert.Equal(r.Data, r.Output));
        var e = Assert.Throws<MlosException>(() => core.RegisterModel("bad", "csharp-echo", null,
            """{"dynamic_batching":{"max_batch_size":8,"preferred_batch_sizes":[16]}}"""));
        Assert.Contains("preferred batch size 16 is larger than max_batch_size 8", e.Message);
    }

    /// <summary>
    /// Instances (Triton's instance group count): one plugin handle each, requests spread over
    /// them as they free up, each with its own batcher; so a model whose calls take 50 ms serves
    /// two at once.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Instances_serve_side_by_side_with_and_without_batching(bool batching)
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var batch = batching ? """{"max_batch_size":4,"max_queue_delay_us":0}""" : "false";
        var model = core.RegisterModel("echo", "csharp-echo", null, $$"""{"instances":2,"config":{"delay_us":50000},"dynamic_batching":{{batch}}}""");
        core.LoadModel("echo");
        Assert.Equal(2, model.Instances);
        var requests = Enumerable.Range(0, 8).Select(i => new Request("x", Rows(i, 1, 4), 1, 4)).ToList();
        Assert.All(RunTogether(core, model, requests), e => Assert.Null(e));
        Assert.All(requests, r => Assert.Equal(r.Data, r.Output));
        var calls = model.InstanceCalls;
        Assert.True(calls[0] > 0 && calls[1] > 0, $"calls per instance: {string.Join(", ", calls)}");
        Assert.Equal(batching, model.BatchCounts is not null);
        core.UnloadModel("echo");
        core.LoadModel("echo"); // every instance unloads and loads again
        new Request("x", Rows(9, 1, 4), 1, 4).Run(core, model);
        core.UnregisterModel("echo");
        var e = Assert.Throws<MlosException>(() => core.RegisterModel("bad", "csharp-echo", null, """{"instances":0}"""));
        Assert.Contains("'instances' must be an integer from 1 to 64, not 0", e.Message);
    }

    [Fact]
    public void A_failing_request_fails_only_itself()
    {
        using var picky = new PythonClass("picky", "Picky", """
            import numpy as np
            class Picky:
                def get_model_io(self, handle):
                    return {"inputs": [{"name": "x", "dtype": "FP32", "shape": [-1, 2]}],
                            "outputs": [{"name": "y", "dtype": "FP32", "shape": [-1, 2]}]}
                def inference(self, handle, data):
                    return data
                def infer(self, handle, inputs):
                    x = inputs["x"]
                    if (x < 0).any():
                        raise ValueError("negative input")
                    return {"y": x * 2}
            """);
        using var core = new MlosCore();
        picky.LoadInto(core);
        var model = core.RegisterModel("picky", "python-bridge", null, Batching(16, 100_000));
        core.LoadModel("picky");
        var requests = Enumerable.Range(0, 8).Select(i => new Request("x", i == 5 ? [-1f, 1f] : [i, i + 0.5f], 1, 2,
            outputBufferBytes: i == 3 ? 4 : 0)).ToList();
        var errors = RunTogether(core, model, requests);
        for (int i = 0; i < requests.Count; i++)
        {
            if (i == 5)
                Assert.Contains("ValueError: negative input", Assert.IsType<MlosException>(errors[i]).Message);
            else if (i == 3)
                Assert.Equal(SmiStatus.BufferTooSmall, Assert.IsType<MlosException>(errors[i]).Status);
            else
            {
                Assert.Null(errors[i]);
                Assert.Equal(requests[i].Data.Select(v => v * 2).ToArray(), requests[i].Output);
            }
        }
    }

    [Fact]
    public void Batching_is_refused_where_it_cannot_be_right()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.GuidePlugin);
        var e = Assert.Throws<MlosException>(() => core.RegisterModel("g", "my-ml-plugin", null, Batching(8, 0)));
        Assert.Equal(SmiStatus.NotSupported, e.Status);
        Assert.Contains("needs typed infer", e.Message);

        using var fixedShape = new PythonClass("fixed", "Fixed", """
            class Fixed:
                def get_model_io(self, handle):
                    return {"inputs": [{"name": "x", "dtype": "FP32", "shape": [4]}], "outputs": []}
                def inference(self, handle, data):
                    return data
            """);
        fixedShape.LoadInto(core);
        var model = core.RegisterModel("fixed", "python-bridge", null, Batching(8, 0));
        e = Assert.Throws<MlosException>(() => core.LoadModel("fixed"));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains("model 'fixed' has no batch dimension: input 'x' is [4]", e.Message);
        Assert.Equal(ModelState.Registered, model.State);

        foreach (var (options, message) in new[]
        {
            ("""{"dynamic_batching":{"max_queue_delay_us":5}}""", "needs \"max_batch_size\""),
            ("""{"dynamic_batching":{"max_batch_size":0}}""", "'max_batch_size' must be an integer from 1"),
            ("""{"dynamic_batching":{"max_batch_size":4,"delay":1}}""", "unknown key 'delay'"),
            ("""{"dynamic_batching":[]}""", "must be true, false or an object"),
            ("""{"dynamic_batching":{"max_batch_size":4,"max_merge_bytes":-1}}""", "'max_merge_bytes' must be a whole number of bytes"),
            ("""{"dynamic_batching":{"max_batch_size":4,"max_merge_bytes":"1M"}}""", "'max_merge_bytes' must be a whole number of bytes"),
        })
        {
            var bad = Assert.Throws<MlosException>(() => core.RegisterModel("bad", "python-bridge", null, options));
            Assert.Equal(SmiStatus.InvalidParam, bad.Status);
            Assert.Contains(message, bad.Message);
        }
    }

    [Fact]
    public void Unloading_runs_the_queued_requests_first()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("echo", "csharp-echo", null, Batching(64, 2_000_000));
        core.LoadModel("echo");
        var requests = Enumerable.Range(0, 8).Select(i => new Request("x", Rows(i, 1, 4), 1, 4)).ToList();
        Exception?[] errors = [];
        var runner = new Thread(() => errors = RunTogether(core, model, requests));
        runner.Start();
        SpinWait.SpinUntil(() => model.Batcher!.Pending >= 8, 10_000); // all queued, their batch waiting up to 2 s to fill
        core.UnloadModel("echo");
        runner.Join();
        Assert.All(errors, e => Assert.Null(e));
        Assert.All(requests, r => Assert.Equal(r.Data, r.Output));
        Assert.Equal(ModelState.Registered, model.State);
    }
}
