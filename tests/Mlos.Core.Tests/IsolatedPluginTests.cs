using System.Diagnostics;
using System.Runtime.InteropServices;
using Mlos.Core.Isolation;
using Mlos.Core.Models;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// Plugins with <c>"isolation": "process"</c> (#16): the plugin's code runs in a
/// <c>mlos_plugin_host</c> of its own, serves the same answers through the same checks, and a
/// crash there fails only the call it was running, with the signal named, never this process.
/// </summary>
[Collection(PluginCollection.Name)]
public unsafe class IsolatedPluginTests
{
    private static readonly IsolationOptions Isolated = new(PluginIsolation.Process);

    static IsolatedPluginTests() => Environment.SetEnvironmentVariable("MLOS_PLUGIN_HOST", BuildTree.PluginHost);

    private static string Hostile => BuildTree.FixturePlugin("libmlos_hostile_plugin.so");

    /// <summary>Typed infer of one FP32 [rows, cols] input "x" (the hostile plugin's default model copies it to y0 and y1).</summary>
    private static (float[][] Outputs, string?[] Names) RunFloats(MlosCore core, Model model, float[] values, int rows, bool callerBuffers = false)
    {
        var inputs = new SmiTensor[1];
        var outputs = new SmiTensor[4];
        var buffers = callerBuffers ? new[] { new float[values.Length], new float[values.Length] } : null;
        var handles = buffers?.Select(b => GCHandle.Alloc(b, GCHandleType.Pinned)).ToArray();
        try
        {
            fixed (float* d = values)
            fixed (SmiTensor* it = inputs)
            fixed (SmiTensor* ot = outputs)
            {
                it->Name = Utf8.Intern("x");
                it->Dtype = SmiDtype.Fp32;
                it->NDim = 2;
                it->Shape[0] = rows;
                it->Shape[1] = values.Length / rows;
                it->Data = d;
                it->ByteSize = (nuint)(values.Length * 4);
                for (int i = 0; handles is not null && i < 2; i++)
                {
                    ot[i].Data = (void*)handles[i].AddrOfPinnedObject();
                    ot[i].ByteSize = (nuint)(values.Length * 4);
                }
                nuint n = (nuint)(callerBuffers ? 2 : 4);
                core.Infer(model, it, 1, ot, &n);
                var got = new float[(int)n][];
                var names = new string?[(int)n];
                for (int i = 0; i < (int)n; i++)
                {
                    got[i] = new ReadOnlySpan<float>(ot[i].Data, (int)ot[i].ByteSize / 4).ToArray();
                    names[i] = Utf8.Read(ot[i].Name);
                    if (callerBuffers) Assert.True(ot[i].Data == (void*)handles![i].AddrOfPinnedObject());
                    if (ot[i].Release != null) ot[i].Release(&ot[i]);
                }
                return (got, names);
            }
        }
        finally
        {
            foreach (var h in handles ?? []) h.Free();
        }
    }

    /// <summary>Untyped inference into a 4-byte buffer: the status and the size the plugin said it needs.</summary>
    private static (SmiStatus, nuint) TooSmall(MlosCore core, Model model, byte[] input)
    {
        nuint size = 4;
        byte* output = stackalloc byte[4];
        try
        {
            fixed (byte* i = input) core.Inference(model, i, (nuint)input.Length, output, &size);
            return (SmiStatus.Success, size);
        }
        catch (MlosException e) { return (e.Status, size); }
    }

    private static float[] Ramp(int n) => Enumerable.Range(0, n).Select(i => i * 0.5f - 7).ToArray();

    private static bool Running(int pid) => File.Exists($"/proc/{pid}/status") && !File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ");

    private static bool Maps(int pid, string file) => File.ReadAllText($"/proc/{pid}/maps").Contains(Path.GetFileName(file));

    [Fact]
    public void An_isolated_plugin_runs_in_a_host_process_and_serves_typed_untyped_info_and_io()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated);
        Assert.Equal(PluginIsolation.Process, plugin.Isolation);
        int pid = plugin.HostPid!.Value;
        Assert.NotEqual(Environment.ProcessId, pid);
        Assert.True(Maps(pid, Hostile), "the host has the plugin mapped");
        Assert.Equal("hostile", plugin.Id);
        Assert.True(plugin.IsThreadSafe);

        var model = core.RegisterModel("m", "hostile", null);
        core.LoadModel("m");
        var values = Ramp(6);
        var (outputs, names) = RunFloats(core, model, values, 2);
        Assert.Equal(new string?[] { "y0", "y1" }, names);
        Assert.Equal(values, outputs[0]);
        Assert.Equal(values, outputs[1]);
        Assert.Equal(values, RunFloats(core, model, values, 3, callerBuffers: true).Outputs[1]);

        byte[] input = "isolated bytes"u8.ToArray(), output = new byte[64];
        nuint size = 64;
        fixed (byte* i = input)
        fixed (byte* o = output)
            core.Inference(model, i, (nuint)input.Length, o, &size);
        Assert.Equal(input, output.AsSpan(0, (int)size).ToArray());

        var (status, needed) = TooSmall(core, model, input);
        Assert.Equal(SmiStatus.BufferTooSmall, status);
        Assert.Equal((nuint)input.Length, needed); // the size needed came back across the channel

        var specs = model.Specs!;
        Assert.Equal("x", specs.Inputs[0].Name);
        Assert.Equal(["y0", "y1"], specs.Outputs.Select(o => o.Name));
    }

    [Fact]
    public void A_tensor_larger_than_the_first_shared_region_grows_it_and_comes_back_whole()
    {
        using var core = new MlosCore();
        core.LoadPlugin(Hostile, options: Isolated);
        var model = core.RegisterModel("big", "hostile", null);
        core.LoadModel("big");
        var values = Ramp(3 << 20); // 12 MiB in, 24 MiB out: past the 1 MiB a channel starts with
        var (outputs, _) = RunFloats(core, model, values, 3);
        Assert.Equal(values, outputs[0]);
        Assert.Equal(values, outputs[1]);
        Assert.Equal(values, RunFloats(core, model, values, 3, callerBuffers: true).Outputs[0]);
    }

    [Fact]
    public void A_call_past_the_shared_memory_limit_fails_with_out_of_memory_and_the_plugin_serves_on()
    {
        using var core = new MlosCore();
        core.LoadPlugin(Hostile, options: Isolated with { SharedMemoryBytes = 4 << 20 });
        var model = core.RegisterModel("m", "hostile", null);
        core.LoadModel("m");
        var e = Assert.Throws<MlosException>(() => RunFloats(core, model, Ramp(2 << 20), 2));
        Assert.Equal(SmiStatus.OutOfMemory, e.Status);
        Assert.Contains("shared_memory_mb is 4", e.Message);
        Assert.Equal(Ramp(8), RunFloats(core, model, Ramp(8), 2).Outputs[0]);
    }

    /// <summary>The same broken answers, in process and isolated: the same statuses and messages.</summary>
    [Theory]
    [InlineData("bad=name")]
    [InlineData("bad=bytes")]
    [InlineData("bad=ndim")]
    [InlineData("bad=norelease")]
    [InlineData("outputs=100000")]
    [InlineData("status=-3")]
    [InlineData("status=12345")]
    public void A_breach_reads_the_same_isolated_as_in_process(string config)
    {
        string Run(IsolationOptions? options)
        {
            using var core = new MlosCore();
            core.LoadPlugin(Hostile, options: options);
            var model = core.RegisterModel("m", "hostile", null, $$"""{"config":"{{config}}"}""");
            core.LoadModel("m");
            var e = Assert.Throws<MlosException>(() => RunFloats(core, model, Ramp(4), 2));
            return $"{e.Status}: {e.Message}";
        }
        Assert.Equal(Run(null), Run(Isolated));
    }

    [Fact]
    public void A_plugin_that_does_not_open_fails_its_load_as_it_would_in_process()
    {
        foreach (var name in new[] { "libmlos_bad_major_plugin.so", "libmlos_no_entry.so", "libmlos_bad_null_entry_plugin.so" })
        {
            string Load(IsolationOptions? options)
            {
                using var core = new MlosCore();
                var e = Assert.Throws<MlosException>(() => core.LoadPlugin(BuildTree.FixturePlugin(name), options: options));
                Assert.Empty(core.Plugins);
                return $"{e.Status}: {e.Message}";
            }
            Assert.Equal(Load(null), Load(Isolated));
        }
        using var c = new MlosCore();
        var missing = Assert.Throws<MlosException>(() => c.LoadPlugin("/nonexistent/libx.so", options: Isolated));
        Assert.Equal(SmiStatus.NotFound, missing.Status);
    }

    [Theory]
    [InlineData("segv", "SIGSEGV in plugin 'hostile' while running model 'crash'")]
    [InlineData("abort", "SIGABRT in plugin 'hostile' while running model 'crash'")]
    [InlineData("exit", "plugin 'hostile' exited (exit status 0) while running model 'crash'")]
    public void A_crash_fails_the_call_it_ran_with_its_cause_and_leaves_this_process_serving(string crash, string message)
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated);
        int pid = plugin.HostPid!.Value;
        var healthy = core.RegisterModel("ok", "hostile", null);
        core.LoadModel("ok");
        var crashing = core.RegisterModel("crash", "hostile", null, $$"""{"config":"crash={{crash}}"}""");
        core.LoadModel("crash");
        Assert.Equal(Ramp(4), RunFloats(core, healthy, Ramp(4), 2).Outputs[0]);

        var e = Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2));
        Assert.Equal(SmiStatus.Busy, e.Status);
        Assert.Equal(message, e.Message);
        Assert.False(plugin.IsAlive);
        Assert.False(Running(pid));
        Assert.Contains(message.Replace(" while running model 'crash'", ""), plugin.Exit);

        var after = Assert.Throws<MlosException>(() => RunFloats(core, healthy, Ramp(4), 2));
        Assert.Equal(SmiStatus.Busy, after.Status);
        Assert.StartsWith("plugin 'hostile' is not running", after.Message);
    }

    [Fact]
    public void A_host_killed_during_a_call_fails_that_call_and_outputs_already_handed_out_stay_readable()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated);
        var echo = core.RegisterModel("echo", "hostile", null);
        core.LoadModel("echo");
        var hang = core.RegisterModel("hang", "hostile", null, """{"config":"hang=1"}""");
        core.LoadModel("hang");

        // An output lent from the host's shared memory, held across the crash.
        var values = Ramp(6);
        var inputs = new SmiTensor[1];
        var outputs = new SmiTensor[2];
        fixed (float* d = values)
        fixed (SmiTensor* it = inputs)
        fixed (SmiTensor* ot = outputs)
        {
            *it = new SmiTensor { Name = Utf8.Intern("x"), Dtype = SmiDtype.Fp32, NDim = 2, Data = d, ByteSize = 24 };
            it->Shape[0] = 2;
            it->Shape[1] = 3;
            nuint n = 2;
            core.Infer(echo, it, 1, ot, &n);

            Exception? failure = null;
            var call = new Thread(() => failure = Record(() => RunFloats(core, hang, Ramp(4), 2)));
            call.Start();
            var waited = Stopwatch.StartNew();
            while (!File.ReadAllText($"/proc/{plugin.HostPid}/status").Contains("Threads:\t3") && waited.ElapsedMilliseconds < 10_000)
                Thread.Sleep(10); // main thread, its first lane's thread, and the lane the hung call runs on
            Thread.Sleep(100);
            Process.GetProcessById(plugin.HostPid!.Value).Kill();
            Assert.True(call.Join(TimeSpan.FromSeconds(10)), "the hung call returned once its host died");
            var e = Assert.IsType<MlosException>(failure);
            Assert.Equal(SmiStatus.Busy, e.Status);
            Assert.Equal("SIGKILL in plugin 'hostile' while running model 'hang'", e.Message);

            Assert.Equal(values, new ReadOnlySpan<float>(ot[0].Data, 6).ToArray());
            Assert.Equal(values, new ReadOnlySpan<float>(ot[1].Data, 6).ToArray());
            ot[0].Release(&ot[0]);
            ot[1].Release(&ot[1]);
        }
    }

    private static Exception? Record(Action action)
    {
        try { action(); return null; }
        catch (Exception e) { return e; }
    }

    [Fact]
    public void Eight_threads_share_an_isolated_thread_safe_plugin_and_every_answer_is_their_own()
    {
        using var core = new MlosCore();
        core.LoadPlugin(Hostile, options: Isolated);
        var model = core.RegisterModel("m", "hostile", null, """{"dynamic_batching":false}""");
        core.LoadModel("m");
        var errors = new Exception?[8];
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            errors[t] = Record(() =>
            {
                for (int i = 0; i < 200; i++)
                {
                    var values = Enumerable.Range(0, 16 + t).Select(k => (float)(t * 1000 + i * 10 + k)).ToArray();
                    var got = RunFloats(core, model, values, 1, callerBuffers: i % 2 == 0).Outputs;
                    Assert.Equal(values, got[0]);
                    Assert.Equal(values, got[1]);
                }
            });
        })).ToArray();
        foreach (var th in threads) th.Start();
        foreach (var th in threads) th.Join();
        Assert.All(errors, Assert.Null);
    }

    [Fact]
    public void Unloading_the_plugin_or_disposing_the_core_ends_its_host()
    {
        int pid;
        using (var core = new MlosCore())
        {
            var plugin = core.LoadPlugin(Hostile, options: Isolated);
            pid = plugin.HostPid!.Value;
            core.RegisterModel("m", "hostile", null);
            Assert.True(Running(pid));
        }
        Assert.False(Running(pid));
    }

    [Fact]
    public void The_isolation_setting_is_read_from_the_core_config_and_refused_when_misspelt()
    {
        using (var core = MlosCore.Create($$"""{"plugins":[{"path":"{{Hostile}}","isolation":"process","shared_memory_mb":64}]}"""))
        {
            var plugin = core.GetPlugin("hostile");
            Assert.Equal(PluginIsolation.Process, plugin.Isolation);
            Assert.Contains("\"isolation\":\"process\"", System.Text.Encoding.UTF8.GetString(RegistryJson.Plugins(core)));
            Assert.Contains($"\"pid\":{plugin.HostPid}", System.Text.Encoding.UTF8.GetString(RegistryJson.Plugins(core)));
        }
        using (var core = MlosCore.Create($$"""{"default_isolation":"process","plugins":[{"path":"{{Hostile}}"}]}"""))
            Assert.Equal(PluginIsolation.Process, core.GetPlugin("hostile").Isolation);
        var e = Assert.Throws<MlosException>(() => MlosCore.Create($$"""{"plugins":[{"path":"{{Hostile}}","isolation":"proces"}]}"""));
        Assert.Equal(SmiStatus.InvalidParam, e.Status);
        Assert.Contains("'isolation' must be \"process\" or \"none\"", e.Message);
        Assert.Throws<MlosException>(() => MlosCore.Create($$"""{"plugins":[{"path":"{{Hostile}}","shared_memory_mb":0}]}"""));
    }
}
