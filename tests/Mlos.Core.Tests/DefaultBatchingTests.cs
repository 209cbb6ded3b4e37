using System.Runtime.InteropServices;
using Mlos.Core.Batching;
using Mlos.Core.Models;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// The defaults of issue #13: dynamic batching on where the model can batch (and nowhere else),
/// never changing an answer, never delaying a lone request; plugins found at start initialized
/// once, by their first model.
/// </summary>
[Collection(PluginCollection.Name)]
public unsafe partial class DefaultBatchingTests
{
    private static string OnnxPlugin => Path.Combine(BuildTree.PluginDir, "libmlos_onnx_plugin.so");
    private static string Onnx(string name) => Path.Combine(BuildTree.Models("onnx"), name);

    [Fact]
    public void Default_batching_starts_only_where_every_input_and_output_has_a_free_dim_0()
    {
        using var core = new MlosCore();
        core.LoadPlugin(OnnxPlugin);
        Model Loaded(string id, string file, string? options = null)
        {
            var m = core.RegisterModel(id, "onnx-runtime", Onnx(file), options);
            core.LoadModel(id);
            return m;
        }

        // [batch,16] -> [batch,4]; [batch,8]+[batch,4] -> three outputs, all with a free dim 0.
        foreach (var m in new[] { Loaded("mlp", "mlp.onnx"), Loaded("multi", "multi_io.onnx") })
        {
            var active = Assert.IsType<BatchingOptions>(m.ActiveBatching);
            Assert.True(active.Automatic);
            Assert.Equal(BatchingOptions.DefaultMaxBatchSize, active.MaxBatchSize);
            Assert.Equal(0, active.MaxQueueDelayMicroseconds);
            Assert.Null(m.WhyNotBatched);
        }
        // x is [1,64]: merging rows would feed the model a shape it does not take.
        var fixedShape = Loaded("fixed", "slow.onnx");
        Assert.Null(fixedShape.ActiveBatching);
        Assert.Equal("input 'x' has no free dim 0", fixedShape.WhyNotBatched);
        // BYTES tensors are never merged: batching them would only add a failed merge per request.
        var strings = Loaded("strings", "strings.onnx");
        Assert.Null(strings.ActiveBatching);
        Assert.Equal("input 'text' is BYTES, which is not merged", strings.WhyNotBatched);
        // 1-D tensors: dim 0 may be a sequence, not a batch (dtypes.onnx: 12 elementwise [n] -> [n]).
        var oneD = Loaded("one-d", "dtypes.onnx");
        Assert.Null(oneD.ActiveBatching);
        Assert.Equal("input 'in_bool' is 1-D, so its dim 0 may be a sequence rather than a batch", oneD.WhyNotBatched);
        // Turned off by the model's options: no batcher, and no reason to report.
        var off = Loaded("off", "mlp.onnx", """{"dynamic_batching":false}""");
        Assert.Null(off.ActiveBatching);
        Assert.Null(off.WhyNotBatched);
        // Asked for explicitly where it cannot be right: the load fails and says why.
        core.RegisterModel("fixed-required", "onnx-runtime", Onnx("slow.onnx"), """{"dynamic_batching":true}""");
        var e = Assert.Throws<MlosException>(() => core.LoadModel("fixed-required"));
        Assert.Contains("input 'x' is [1,64]", e.Message);

        // Registered, not loaded: the options asked for, not active yet.
        var pending = core.RegisterModel("pending", "onnx-runtime", Onnx("mlp.onnx"));
        using (var info = System.Text.Json.JsonDocument.Parse(RegistryJson.ModelInfo(pending)))
            Assert.False(info.RootElement.GetProperty("dynamic_batching").GetProperty("active").GetBoolean());

        // The answer says what is in force.
        using (var info = System.Text.Json.JsonDocument.Parse(RegistryJson.ModelInfo(core.GetModel("mlp"))))
        {
            var b = info.RootElement.GetProperty("dynamic_batching");
            Assert.Equal(BatchingOptions.DefaultMaxBatchSize, b.GetProperty("max_batch_size").GetInt32());
            Assert.True(b.GetProperty("default").GetBoolean());
            Assert.True(b.GetProperty("active").GetBoolean());
        }
        using (var info = System.Text.Json.JsonDocument.Parse(RegistryJson.ModelInfo(fixedShape)))
        {
            Assert.False(info.RootElement.GetProperty("dynamic_batching").GetBoolean());
            Assert.Equal("input 'x' has no free dim 0", info.RootElement.GetProperty("dynamic_batching_off").GetString());
        }
    }

    [Fact]
    public void Default_batching_stays_off_for_plugins_that_cannot_batch_and_never_refuses_them()
    {
        using var core = new MlosCore();
        // The guide's C plugin has no typed infer: a default registration is not refused (an
        // explicit dynamic_batching would be), it just runs unbatched.
        core.LoadPlugin(BuildTree.GuidePlugin);
        var guide = core.RegisterModel("g", "my-ml-plugin", null);
        core.LoadModel("g");
        Assert.Null(guide.ActiveBatching);
        Assert.Equal("the plugin has no typed infer", guide.WhyNotBatched);
    }

    [Fact]
    public void Default_batched_onnx_answers_equal_batching_off_bit_for_bit()
    {
        using var core = new MlosCore();
        core.LoadPlugin(OnnxPlugin);
        var batched = core.RegisterModel("batched", "onnx-runtime", Onnx("mlp.onnx"));
        var plain = core.RegisterModel("plain", "onnx-runtime", Onnx("mlp.onnx"), """{"dynamic_batching":false}""");
        core.LoadModel("batched");
        core.LoadModel("plain");
        Assert.NotNull(batched.ActiveBatching);
        var random = new Random(13);
        float[] Row() => Enumerable.Range(0, 16).Select(_ => (float)random.NextDouble() * 4 - 2).ToArray();
        // The default never waits, so rows merge only when they queue behind a running batch:
        // rounds of 32 threads released together until one round has merged some.
        var all = new List<BatchedRequest>();
        for (int round = 0; round < 50 && !all.Any(r => r.Timing.BatchSize > 1); round++)
        {
            var requests = Enumerable.Range(0, 32).Select(_ => new BatchedRequest(Row())).ToList();
            Assert.All(BatchedRequest.RunTogether(core, batched, requests), e => Assert.Null(e));
            all.AddRange(requests);
        }
        Assert.Contains(all, r => r.Timing.BatchSize > 1);
        var (batches, merged) = batched.BatchCounts!.Value;
        Assert.True(batches < merged, $"{batches} batches for {merged} requests");
        foreach (var r in all)
        {
            var alone = new BatchedRequest(r.Data);
            alone.Run(core, plain);
            Assert.Equal(alone.Output, r.Output); // bit for bit
        }
        // The statistics extension's counts, kept by the core: one execution per batch, one per
        // request unbatched; every request a success.
        var b = batched.Statistics.Read();
        Assert.Equal(all.Count, b.InferenceCount);
        Assert.Equal(batches, b.ExecutionCount);
        Assert.Equal(all.Count, b.Success.Count);
        Assert.Equal(0, b.Fail.Count);
        Assert.Contains(b.Batches, x => x.BatchSize > 1);
        var p = plain.Statistics.Read();
        Assert.Equal(all.Count, p.InferenceCount);
        Assert.Equal(all.Count, p.ExecutionCount);
    }

    [LibraryImport("libc", EntryPoint = "gettid")]
    private static partial int GetTid();

    [Fact]
    public void A_lone_request_runs_at_once_on_its_callers_own_thread()
    {
        // The Python model answers with the OS thread it ran on. Dynamic batching is on (with
        // the defaults: never wait), yet a request that finds the model idle must not be handed
        // to any other thread.
        using var whoami = new PythonClass("whoami", "WhoAmI", """
            import threading
            import numpy as np
            class WhoAmI:
                def get_model_io(self, handle):
                    return {"inputs": [{"name": "x", "dtype": "FP32", "shape": [-1, 1]}],
                            "outputs": [{"name": "tid", "dtype": "INT64", "shape": [-1, 1]}]}
                def inference(self, handle, data):
                    return data
                def infer(self, handle, inputs):
                    return {"tid": np.full((inputs["x"].shape[0], 1), threading.get_native_id(), dtype=np.int64)}
            """);
        // In process: the answer is the thread the model ran on, compared with the caller's.
        using var core = new MlosCore { DefaultIsolation = Mlos.Core.Isolation.PluginIsolation.None };
        whoami.LoadInto(core);
        var model = core.RegisterModel("who", "python-bridge", null, """{"dynamic_batching":true}""");
        core.LoadModel("who");
        Assert.NotNull(model.ActiveBatching);
        for (int i = 0; i < 20; i++)
        {
            var r = new BatchedRequest([1f], width: 1);
            var t = new Thread(() => r.Run(core, model, longOutput: true));
            t.Start();
            t.Join();
            Assert.Null(r.Failure);
            Assert.Equal(1, r.Timing.BatchSize);
            Assert.Equal(r.CallerTid, r.LongOutput![0]);
        }
        // The asynchronous path (the server's) completes a lone request before it returns.
        var input = new SmiTensor { Name = Utf8.Intern("x"), Dtype = SmiDtype.Fp32, NDim = 2, ByteSize = 4 };
        input.Shape[0] = 1;
        input.Shape[1] = 1;
        float one = 1;
        input.Data = &one;
        var outputs = stackalloc SmiTensor[2];
        nuint n = 2;
        var timing = CompletedAtOnce(core.InferAsync(model, &input, 1, outputs, &n));
        Assert.Equal(1, timing.BatchSize);
        Assert.Equal(GetTid(), *(long*)outputs[0].Data);
        outputs[0].Release(&outputs[0]);
        Assert.Equal(21, model.BatchCounts!.Value.Batches); // all 21 went through the batcher, one by one
    }

    /// <summary>The result of a task that must have completed before it was returned.</summary>
    private static InferTiming CompletedAtOnce(ValueTask<InferTiming> task) =>
        task.IsCompletedSuccessfully ? task.Result : throw new Xunit.Sdk.XunitException("the lone request was not answered before InferAsync returned");

    /// <summary>A typed request of one FP32 row; the first output back as floats (or int64).</summary>
    private sealed class BatchedRequest(float[] data, int width = 16)
    {
        public float[] Data { get; } = data;
        public float[]? Output;
        public long[]? LongOutput;
        public InferTiming Timing;
        public Exception? Failure;
        public int CallerTid;

        public void Run(MlosCore core, Model model, bool longOutput = false)
        {
            CallerTid = GetTid();
            var name = model.Plugin.Id == "python-bridge" ? "x" : "input";
            var input = new SmiTensor { Name = Utf8.Intern(name), Dtype = SmiDtype.Fp32, NDim = 2, ByteSize = (nuint)(Data.Length * 4) };
            input.Shape[0] = Data.Length / width;
            input.Shape[1] = width;
            var outputs = new SmiTensor[4];
            try
            {
                fixed (float* d = Data)
                fixed (SmiTensor* o = outputs)
                {
                    input.Data = d;
                    nuint n = 4;
                    Timing = core.Infer(model, &input, 1, o, &n);
                    if (longOutput) LongOutput = new ReadOnlySpan<long>(o->Data, (int)(o->ByteSize / 8)).ToArray();
                    else Output = new ReadOnlySpan<float>(o->Data, (int)(o->ByteSize / 4)).ToArray();
                    for (int i = 0; i < (int)n; i++)
                        if (o[i].Release != null) o[i].Release(&o[i]);
                }
            }
            catch (Exception e) { Failure = e; }
        }

        public static Exception?[] RunTogether(MlosCore core, Model model, IReadOnlyList<BatchedRequest> requests)
        {
            using var start = new Barrier(requests.Count);
            var threads = requests.Select(r => new Thread(() =>
            {
                start.SignalAndWait();
                r.Run(core, model);
            })).ToArray();
            foreach (var t in threads) t.Start();
            foreach (var t in threads) t.Join();
            return requests.Select(r => r.Failure).ToArray();
        }
    }
}
