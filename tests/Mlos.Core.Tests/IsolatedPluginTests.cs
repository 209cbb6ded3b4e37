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
        var plugin = core.LoadPlugin(Hostile, options: Isolated with { Restart = new RestartPolicy(Max: 0) });
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
        var state = plugin.Host!;
        Assert.Equal("down", state.State);
        Assert.Equal(message.Replace(" while running model 'crash'", ""), state.LastFailure);
        Assert.Equal(1, state.Crashes);

        var after = Assert.Throws<MlosException>(() => RunFloats(core, healthy, Ramp(4), 2));
        Assert.Equal(SmiStatus.Busy, after.Status);
        Assert.Equal($"plugin 'hostile' is down: its host died once within 60 s, more than its restart policy allows (last: {state.LastFailure})", after.Message);
    }

    private static void WaitServing(Mlos.Core.Plugins.Plugin plugin, int restarts)
    {
        var waited = Stopwatch.StartNew();
        while (!(plugin.IsAlive && plugin.Host!.Restarts >= restarts))
        {
            Assert.True(waited.ElapsedMilliseconds < 20_000, $"not back after 20 s: {plugin.Host}");
            Thread.Sleep(5);
        }
    }

    private static string Info(Model model) => model.Plugin.ModelInfo(model.Handle)!;

    [Fact]
    public void A_host_that_died_comes_back_with_its_models_registered_and_loaded_again()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated);
        var loaded = core.RegisterModel("ok", "hostile", null);
        core.LoadModel("ok");
        var registered = core.RegisterModel("idle", "hostile", null);
        var crashing = core.RegisterModel("crash", "hostile", null, """{"config":"crash=segv"}""");
        core.LoadModel("crash");
        int first = plugin.HostPid!.Value;

        var e = Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2));
        Assert.Equal("SIGSEGV in plugin 'hostile' while running model 'crash'", e.Message);
        Assert.False(loaded.IsReady);
        WaitServing(plugin, restarts: 1);

        Assert.NotEqual(first, plugin.HostPid);
        Assert.True(loaded.IsReady);
        Assert.Equal(Ramp(4), RunFloats(core, loaded, Ramp(4), 2).Outputs[0]);
        Assert.Contains("\"loaded\":true", Info(loaded));
        Assert.Contains("\"loaded\":false", Info(registered)); // registered again, and not loaded: as it was
        var state = plugin.Host!;
        Assert.Equal(("serving", 1, 1), (state.State, state.Restarts, state.Crashes));
        Assert.Equal("SIGSEGV in plugin 'hostile'", state.LastFailure);
        core.UnloadModel("ok");
        core.UnregisterModel("idle");
    }

    [Fact]
    public void More_crashes_in_the_window_than_the_policy_allows_leave_the_plugin_down()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated with { Restart = new RestartPolicy(Max: 2, BackoffMs: 1) });
        var crashing = core.RegisterModel("crash", "hostile", null, """{"config":"crash=abort"}""");
        core.LoadModel("crash");
        for (int restart = 1; restart <= 2; restart++)
        {
            Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2));
            WaitServing(plugin, restart);
        }
        Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2));
        Thread.Sleep(200); // no third restart comes
        Assert.Equal(("down", 2, 3), (plugin.Host!.State, plugin.Host.Restarts, plugin.Host.Crashes));
        Assert.Contains("died 3 times within 60 s", Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2)).Message);
    }

    [Fact]
    public void A_call_past_call_timeout_ms_fails_with_timeout_and_its_host_is_replaced()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated with { CallTimeoutMs = 300, Restart = new RestartPolicy(BackoffMs: 1) });
        var hang = core.RegisterModel("hang", "hostile", null, """{"config":"hang=1"}""");
        core.LoadModel("hang");
        var ok = core.RegisterModel("ok", "hostile", null);
        core.LoadModel("ok");
        var took = Stopwatch.StartNew();
        var e = Assert.Throws<MlosException>(() => RunFloats(core, hang, Ramp(4), 2));
        Assert.Equal(SmiStatus.Timeout, e.Status);
        Assert.Equal("plugin 'hostile' ran past its call_timeout_ms of 300 while running model 'hang': its host process was stopped", e.Message);
        Assert.InRange(took.ElapsedMilliseconds, 250, 15_000);
        WaitServing(plugin, restarts: 1);
        Assert.Equal("plugin 'hostile' was stopped (it ran past its call_timeout_ms of 300 while running model 'hang')", plugin.Host!.LastFailure);
        Assert.Equal(Ramp(4), RunFloats(core, ok, Ramp(4), 2).Outputs[0]);
    }

    /// <summary>Untyped inference of <paramref name="input"/> into a buffer of its size: the bytes that came back.</summary>
    private static byte[] Echo(MlosCore core, Model model, byte[] input)
    {
        var output = new byte[input.Length];
        nuint size = (nuint)output.Length;
        fixed (byte* i = input)
        fixed (byte* o = output)
            core.Inference(model, i, (nuint)input.Length, o, &size);
        return output[..(int)size];
    }

    [Fact]
    public void A_plugin_that_writes_past_its_output_buffer_harms_only_its_own_host()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated with { SharedMemoryBytes = 64UL << 20, Restart = new RestartPolicy(BackoffMs: 1) });
        var ok = core.RegisterModel("ok", "hostile", null);
        core.LoadModel("ok");
        var input = Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray();
        // A little past the end lands in the host's shared memory: the answer is still exactly
        // the bytes the plugin said it wrote, and nothing else of this process was touched.
        var nudge = core.RegisterModel("nudge", "hostile", null, """{"config":"overrun=512"}""");
        core.LoadModel("nudge");
        for (int i = 0; i < 50; i++) Assert.Equal(input, Echo(core, nudge, input));
        // Far past it (256 MiB) runs off the host's mappings: the host dies, the call fails
        // naming the signal, and the plugin comes back to serve.
        var far = core.RegisterModel("far", "hostile", null, """{"config":"overrun=268435456"}""");
        core.LoadModel("far");
        var e = Assert.Throws<MlosException>(() => Echo(core, far, input));
        Assert.Equal(SmiStatus.Busy, e.Status);
        Assert.Matches("^SIG(SEGV|BUS) in plugin 'hostile' while running model 'far'$", e.Message);
        WaitServing(plugin, restarts: 1);
        Assert.Equal(input, Echo(core, ok, input));
        Assert.Equal(input, Echo(core, nudge, input));
    }

    [Fact]
    public void Resources_a_model_holds_are_allocated_again_on_a_restarted_host_and_given_back_ones_are_not()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated with { Restart = new RestartPolicy(BackoffMs: 1) });
        var held = core.RegisterModel("held", "hostile", null);
        core.LoadModel("held");
        var early = core.RegisterModel("early", "hostile", null); // allocated before its load
        var crashing = core.RegisterModel("crash", "hostile", null, """{"config":"crash=segv"}""");
        core.LoadModel("crash");
        var threads = new SmiResourceReq { Type = SmiResourceType.CpuThreads, DeviceId = 0, Amount = 3 };
        var memory = new SmiResourceReq { Type = SmiResourceType.Memory, DeviceId = 0, Amount = 4096 };
        var both = stackalloc SmiResourceReq[] { threads, memory };
        core.AllocateResources("held", both, 2);
        core.AllocateResources("early", &threads, 1);
        core.LoadModel("early");
        Assert.Contains("\"allocated\":4099", Info(held));

        Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2));
        WaitServing(plugin, restarts: 1);
        Assert.Contains("\"allocated\":4099", Info(held));
        Assert.Contains("\"loaded\":true,\"allocated\":3", Info(early));

        core.DeallocateResources("held");
        Assert.Contains("\"allocated\":0", Info(held));
        Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2));
        WaitServing(plugin, restarts: 2);
        Assert.Contains("\"allocated\":0", Info(held)); // given back: not asked for again
        Assert.Contains("\"allocated\":3", Info(early));
    }

    [Fact]
    public void A_models_own_call_timeout_ms_stops_its_calls_only_and_survives_a_restart()
    {
        using var core = new MlosCore();
        // The plugin sets no limit; one model does, the other runs slow calls unbounded.
        var plugin = core.LoadPlugin(Hostile, options: Isolated with { Restart = new RestartPolicy(BackoffMs: 1) });
        var hang = core.RegisterModel("hang", "hostile", null, """{"config":"hang=1","call_timeout_ms":300}""");
        core.LoadModel("hang");
        var slow = core.RegisterModel("slow", "hostile", null, """{"config":"delay_us=700000"}""");
        core.LoadModel("slow");
        Assert.Equal(Ramp(4), RunFloats(core, slow, Ramp(4), 2).Outputs[0]); // 0.7 s, past the other model's limit
        for (int round = 1; round <= 2; round++) // the second time through a restarted host: the limit was replayed
        {
            var e = Assert.Throws<MlosException>(() => RunFloats(core, hang, Ramp(4), 2));
            Assert.Equal(SmiStatus.Timeout, e.Status);
            Assert.Equal("plugin 'hostile' ran past its call_timeout_ms of 300 while running model 'hang': its host process was stopped", e.Message);
            WaitServing(plugin, restarts: round);
        }
        Assert.Equal(Ramp(4), RunFloats(core, slow, Ramp(4), 2).Outputs[0]);

        // In process nothing could stop a running call: refused at registration, said why.
        core.LoadPlugin(BuildTree.FixturePlugin("libmlos_hostile_serial_plugin.so"), "serial", options: new(PluginIsolation.None));
        var refused = Assert.Throws<MlosException>(() => core.RegisterModel("m", "serial", null, """{"call_timeout_ms":300}"""));
        Assert.Equal(SmiStatus.NotSupported, refused.Status);
        Assert.Contains("call_timeout_ms needs a plugin in a host process of its own", refused.Message);
        Assert.Throws<MlosException>(() => core.RegisterModel("m", "hostile", null, """{"call_timeout_ms":-1}"""));
    }

    [Fact]
    public void A_host_past_memory_limit_mb_fails_its_allocation_and_dies_without_touching_this_process()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated with { MemoryLimitMb = 256, Restart = new RestartPolicy(BackoffMs: 1) });
        var greedy = core.RegisterModel("greedy", "hostile", null, """{"config":"grab_mb=1024"}""");
        core.LoadModel("greedy");
        var modest = core.RegisterModel("modest", "hostile", null, """{"config":"grab_mb=96"}""");
        core.LoadModel("modest");
        Assert.Equal(Ramp(4), RunFloats(core, modest, Ramp(4), 2).Outputs[0]); // under the limit: served
        var e = Assert.Throws<MlosException>(() => RunFloats(core, greedy, Ramp(4), 2));
        Assert.Equal("SIGABRT in plugin 'hostile' while running model 'greedy'", e.Message);
        WaitServing(plugin, restarts: 1);
        Assert.Equal(Ramp(4), RunFloats(core, modest, Ramp(4), 2).Outputs[0]);
    }

    private static int OpenDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>
    /// Shared-memory mappings of this process: the channels' regions are memfds (never names in
    /// /dev/shm, so nothing there can outlive a crash), mapped once per channel.
    /// </summary>
    private static int MemfdMappings() => File.ReadLines("/proc/self/maps").Count(l => l.Contains("/memfd:mlos-plugin-host", StringComparison.Ordinal));

    /// <summary>Plugin host processes whose parent is this process (live or not yet reaped).</summary>
    private static int HostChildren() => Directory.GetDirectories("/proc")
        .Select(Path.GetFileName)
        .Where(n => int.TryParse(n, out _))
        .Count(pid =>
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                return stat.Contains("(mlos_plugin_hos") && fields[1] == Environment.ProcessId.ToString();
            }
            catch (IOException) { return false; }
        });

    [Fact]
    public void A_hundred_crash_restart_cycles_leave_no_processes_descriptors_or_memory_behind()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Hostile, options: Isolated with { Restart = new RestartPolicy(Max: 1000, BackoffMs: 0) });
        var ok = core.RegisterModel("ok", "hostile", null);
        core.LoadModel("ok");
        var crashing = core.RegisterModel("crash", "hostile", null, """{"config":"crash=segv"}""");
        core.LoadModel("crash");
        void Cycle(int n)
        {
            Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2));
            WaitServing(plugin, n);
            Assert.Equal(Ramp(4), RunFloats(core, ok, Ramp(4), 2).Outputs[0]);
        }
        for (int i = 1; i <= 10; i++) Cycle(i); // warm: JIT, pools, the first channels
        GC.Collect();
        int fds = OpenDescriptors(), mappings = MemfdMappings();
        long rss = Environment.WorkingSet;
        for (int i = 11; i <= 110; i++) Cycle(i);
        GC.Collect();
        Assert.Equal(1, HostChildren());
        Assert.InRange(OpenDescriptors(), fds - 4, fds + 4);
        Assert.True(mappings > 0, "the channels' regions are mapped as memfd:mlos-plugin-host");
        Assert.InRange(MemfdMappings(), mappings - 4, mappings + 4);
        Assert.InRange(Environment.WorkingSet - rss, long.MinValue, 16L << 20);
        Assert.Equal((110, 110), (plugin.Host!.Restarts, plugin.Host.Crashes));
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
            Assert.Equal("SIGKILL in plugin 'hostile'", plugin.Host!.LastFailure);

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
        Assert.Contains("'isolation' must be \"process\", \"none\" or \"auto\"", e.Message);
        Assert.Throws<MlosException>(() => MlosCore.Create($$"""{"plugins":[{"path":"{{Hostile}}","shared_memory_mb":0}]}"""));
    }

    [Fact]
    public void By_default_every_plugin_but_the_first_party_CSharp_ones_runs_in_a_host_of_its_own()
    {
        // The core's own default, unless this run set another (the suites can run all one way).
        if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("MLOS_DEFAULT_ISOLATION")))
            using (var plain = new MlosCore()) Assert.Equal(PluginIsolation.Auto, plain.DefaultIsolation);
        using (var core = new MlosCore { DefaultIsolation = PluginIsolation.Auto })
        {
            // Third-party native code (C, Go) and the Python bridge: a host each.
            Assert.Equal(PluginIsolation.Process, core.LoadPlugin(Hostile).Isolation);
            Assert.Equal(PluginIsolation.Process, core.LoadPlugin(BuildTree.GuidePlugin, "guide").Isolation);
            Assert.Equal(PluginIsolation.Process, core.LoadPlugin(BuildTree.GoPlugin, "go").Isolation);
            var bridge = core.LoadPlugin(Path.Combine(BuildTree.PluginDir, "libmlos_python_plugin.so"), "python", deferInitialize: true);
            Assert.Equal(PluginIsolation.Process, bridge.Isolation);
            Assert.NotEqual(Environment.ProcessId, bridge.HostPid);
            // The first-party C# plugins: in process, the fast path.
            Assert.Equal(PluginIsolation.None, core.LoadPlugin(BuildTree.EchoPlugin).Isolation);
            Assert.Equal(PluginIsolation.None, core.LoadPlugin(Path.Combine(BuildTree.PluginDir, "libmlos_onnx_plugin.so"), deferInitialize: true).Isolation);
            // Asked for explicitly, either way wins over the rule.
            Assert.Equal(PluginIsolation.None, core.LoadPlugin(BuildTree.FixturePlugin("libmlos_hostile_serial_plugin.so"), "serial", options: new(PluginIsolation.None)).Isolation);
            Assert.Equal(PluginIsolation.Process, core.LoadPlugin(BuildTree.EchoPlugin, "echo-isolated", options: Isolated).Isolation);
            var listed = System.Text.Encoding.UTF8.GetString(RegistryJson.Plugins(core));
            Assert.Contains("\"id\":\"guide\"", listed);
            Assert.DoesNotContain("\"isolation\":\"auto\"", listed); // a plugin says where it runs
            // Settings only a host has ask for one, even of a first-party plugin...
            var pooled = core.LoadPlugin(BuildTree.EchoPlugin, "echo-pooled", options: IsolationOptions.Parse("""{"instances":2}""", "options"));
            Assert.Equal((PluginIsolation.Process, 2), (pooled.Isolation, pooled.Hosts!.Count));
            // ...and cannot be had in process: refused, not dropped.
            var refused = Assert.Throws<MlosException>(() => core.LoadPlugin(BuildTree.EchoPlugin, "echo-timed",
                options: IsolationOptions.Parse("""{"isolation":"none","call_timeout_ms":100}""", "options")));
            Assert.Equal(SmiStatus.InvalidParam, refused.Status);
            Assert.Contains("need \"isolation\": \"process\"", refused.Message);
            // A path that is no plugin is refused as in process, without a host started for it.
            int hosts = HostChildren();
            var missing = Assert.Throws<MlosException>(() => core.LoadPlugin(Path.Combine(BuildTree.Dir, "no-such-plugin.so")));
            Assert.Equal(SmiStatus.NotFound, missing.Status);
            Assert.Equal(SmiStatus.InvalidParam, Assert.Throws<MlosException>(() => core.LoadPlugin(BuildTree.Dir)).Status);
            Assert.Equal(hosts, HostChildren());
        }
        // A config may name the rule, or turn it off for every plugin it does not set.
        using (var core = MlosCore.Create($$"""{"default_isolation":"none","plugins":[{"path":"{{Hostile}}"}]}"""))
            Assert.Equal(PluginIsolation.None, core.GetPlugin("hostile").Isolation);
        using (var core = MlosCore.Create($$"""{"default_isolation":"auto","plugins":[{"path":"{{Hostile}}"},{"path":"{{BuildTree.EchoPlugin}}","isolation":"auto"}]}"""))
        {
            Assert.Equal(PluginIsolation.Process, core.GetPlugin("hostile").Isolation);
            Assert.Equal(PluginIsolation.None, core.GetPlugin("csharp-echo").Isolation);
        }
    }

    [Fact]
    public void Healthy_models_of_another_isolated_plugin_never_fail_while_a_neighbour_crashes_over_and_over()
    {
        // The same library twice, in two hosts (in process it could be loaded once only).
        using var core = new MlosCore();
        var bad = core.LoadPlugin(Hostile, "bad", options: Isolated with { Restart = new RestartPolicy(Max: 1000, BackoffMs: 0) });
        core.LoadPlugin(Hostile, "good", options: Isolated);
        var crashing = core.RegisterModel("crash", "bad", null, """{"config":"crash=segv"}""");
        core.LoadModel("crash");
        var healthy = Enumerable.Range(0, 4).Select(i => core.RegisterModel($"ok{i}", "good", null)).ToArray();
        foreach (var m in healthy) core.LoadModel(m.Id);

        using var stop = new CancellationTokenSource();
        int served = 0;
        var errors = new Exception?[8];
        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            errors[t] = Record(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var values = Ramp(8 + t);
                    Assert.Equal(values, RunFloats(core, healthy[t % 4], values, 1).Outputs[0]);
                    Interlocked.Increment(ref served);
                }
            });
        })).ToArray();
        foreach (var th in threads) th.Start();
        for (int crash = 1; crash <= 20; crash++)
        {
            var e = Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2));
            Assert.Equal("SIGSEGV in plugin 'bad' while running model 'crash'", e.Message);
            WaitServing(bad, crash);
        }
        stop.Cancel();
        foreach (var th in threads) th.Join();
        Assert.All(errors, Assert.Null);
        Assert.True(served > 100, $"only {served} requests were served meanwhile");
    }

    [Fact]
    public void Instances_start_that_many_hosts_and_one_crashing_leaves_the_others_serving()
    {
        var serial = BuildTree.FixturePlugin("libmlos_hostile_serial_plugin.so");
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(serial, options: Isolated with { Instances = 3, Restart = new RestartPolicy(BackoffMs: 2000) });
        Assert.Equal(3, plugin.Hosts!.Select(h => h.Pid).Distinct().Count());
        Assert.True(plugin.IsThreadSafe); // the pool runs one call at a time per instance itself
        var ok = core.RegisterModel("ok", "hostile-serial", null);
        core.LoadModel("ok");
        var crashing = core.RegisterModel("crash", "hostile-serial", null, """{"config":"crash=segv"}""");
        core.LoadModel("crash");
        Assert.All(Enumerable.Range(0, 3).Select(_ => Info(ok)), i => Assert.Contains("\"loaded\":true", i));

        var e = Assert.Throws<MlosException>(() => RunFloats(core, crashing, Ramp(4), 2));
        Assert.Equal("SIGSEGV in plugin 'hostile-serial' while running model 'crash'", e.Message);
        Assert.Equal("degraded", plugin.Host!.State);
        Assert.True(ok.IsReady);
        var errors = new Exception?[6];
        var threads = Enumerable.Range(0, 6).Select(t => new Thread(() => errors[t] = Record(() =>
        {
            for (int i = 0; i < 50; i++) Assert.Equal(Ramp(6 + t), RunFloats(core, ok, Ramp(6 + t), 1).Outputs[1]);
        }))).ToArray();
        foreach (var th in threads) th.Start();
        foreach (var th in threads) th.Join();
        Assert.All(errors, Assert.Null);
        WaitServing(plugin, restarts: 1);
        Assert.Equal("serving", plugin.Host!.State);
        core.UnloadModel("ok");
        core.UnregisterModel("ok");
    }
}
