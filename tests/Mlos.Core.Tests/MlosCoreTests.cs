using System.Text;
using System.Text.Json;
using Mlos.Core.Models;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>The registry and dispatch, driving the real published plugins (NativeAOT .so files).</summary>
[Collection(PluginCollection.Name)]
public unsafe class MlosCoreTests
{
    [Fact]
    public void Echo_model_round_trips_untyped_and_typed()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(BuildTree.EchoPlugin, config: "test-config");
        Assert.Equal("csharp-echo", plugin.Id);
        Assert.True(plugin.IsThreadSafe);
        Assert.True(plugin.HasTypedInfer);

        var model = core.RegisterModel("m", "csharp-echo", null, """{"framework":"echo"}""");
        core.LoadModel("m");
        Assert.Equal(ModelState.Loaded, model.State);

        var input = Encoding.UTF8.GetBytes("bytes in, bytes out");
        var output = new byte[64];
        nuint size = (nuint)output.Length;
        fixed (byte* i = input)
        fixed (byte* o = output)
            core.Inference(core.GetModel("m".AsSpan()), i, (nuint)input.Length, o, &size);
        Assert.Equal(input, output.AsSpan(0, (int)size).ToArray());

        var (values, name, count) = Echo(core, model);
        Assert.Equal((nuint)1, count);
        Assert.Equal([3L, 1, 4, 1, 5], values);
        Assert.Equal("output_0", name);
    }

    /// <summary>
    /// Versions of one id live side by side (Triton's numbered versions): a lookup without a
    /// version reaches the highest loaded one, each version loads and unregisters on its own,
    /// and the id's own calls act on all of them.
    /// </summary>
    [Fact]
    public void Versions_of_one_model_are_served_side_by_side()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        // Versions come by prepare and publish (a repository); a plain registration takes a new id only.
        Model Version(string v)
        {
            var m = core.PrepareModel("m", "csharp-echo", null, $$"""{"version":"{{v}}"}""");
            core.Publish(m);
            return m;
        }
        var v2 = Version("2");
        var v10 = Version("10");
        var v1 = Version("1");
        Assert.Equal("a model with id 'm' is already registered",
            Assert.Throws<MlosException>(() => core.RegisterModel("m", "csharp-echo", null, """{"version":"3"}""")).Message);
        Assert.Equal([v10, v2, v1], core.GetVersions("m").All); // as numbers: 10 above 2
        Assert.Same(v10, core.GetModel("m")); // none loaded: the highest
        core.LoadModel(v2);
        Assert.Same(v2, core.GetModel("m")); // the highest loaded
        Assert.Same(v2, core.GetModel("m"u8));
        Assert.Same(v1, core.GetModel("m", "1"));
        var e = Assert.Throws<MlosException>(() => core.GetModel("m", "3"));
        Assert.Equal(SmiStatus.NotFound, e.Status);
        Assert.Equal("model 'm' has no version 3 (versions: 10, 2, 1)", e.Message);
        e = Assert.Throws<MlosException>(() => core.PrepareModel("m", "csharp-echo", null, """{"version":"2"}"""));
        Assert.Equal(SmiStatus.AlreadyExists, e.Status);
        Assert.Equal("model 'm' version 2 is already registered", e.Message);
        Assert.Equal(3, core.Models.Count);

        core.LoadModel("m"); // every version
        Assert.All(core.GetVersions("m").All, m => Assert.Equal(ModelState.Loaded, m.State));
        Assert.Same(v10, core.GetModel("m"));
        core.UnregisterModel(v10);
        Assert.Same(v2, core.GetModel("m"u8)); // the lookup cache forgets the unregistered version
        Assert.Equal(ModelState.Unregistered, v10.State);
        core.UnloadModel("m");
        Assert.All(core.GetVersions("m").All, m => Assert.Equal(ModelState.Registered, m.State));
        core.UnregisterModel("m");
        Assert.Empty(core.Models);
        Assert.Equal(SmiStatus.NotFound, Assert.Throws<MlosException>(() => core.GetModel("m")).Status);
    }

    /// <summary>Typed echo of five INT64s (3 1 4 1 5) through <paramref name="model"/>: the values, name and count of outputs that came back.</summary>
    private static (long[] Values, string? Name, nuint Count) Echo(MlosCore core, Model model)
    {
        long[] ids = [3, 1, 4, 1, 5];
        var inputs = new SmiTensor[1];
        var outputs = new SmiTensor[1];
        fixed (long* d = ids)
        fixed (SmiTensor* it = inputs)
        fixed (SmiTensor* ot = outputs)
        {
            it->Name = Utf8.Intern("ids");
            it->Dtype = SmiDtype.Int64;
            it->NDim = 1;
            it->Shape[0] = 5;
            it->Data = d;
            it->ByteSize = 40;
            nuint n = 1;
            core.Infer(model, it, 1, ot, &n);
            var got = (new ReadOnlySpan<long>(ot->Data, 5).ToArray(), Utf8.Read(ot->Name), n);
            ot->Release(ot);
            return got;
        }
    }

    /// <summary>
    /// A reload without a gap: the replacement is loaded out of reach while the old model serves,
    /// then takes its place; a request that still holds the old model (it looked it up just
    /// before) runs on the replacement instead of failing, and so does one that holds a retired
    /// version. A replacement that is discarded leaves the old model serving.
    /// </summary>
    [Fact]
    public void A_prepared_model_takes_its_place_without_failing_requests_that_hold_the_old_one()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var old = core.RegisterModel("m", "csharp-echo", null, """{"version":"1"}""");
        core.LoadModel("m");

        var discarded = core.PrepareModel("m", "csharp-echo", null, """{"version":"1"}""", replacing: old);
        core.LoadModel(discarded);
        Assert.Same(old, core.GetModel("m")); // out of reach until published
        Assert.Single(core.Models);
        core.Discard(discarded);
        Assert.Equal(ModelState.Unregistered, discarded.State);
        Assert.Same(old, core.GetModel("m"));

        var fresh = core.PrepareModel("m", "csharp-echo", null, """{"version":"1"}""", replacing: old);
        core.LoadModel(fresh);
        core.Publish(fresh, old);
        Assert.Same(fresh, core.GetModel("m"));
        Assert.Equal(ModelState.Unregistered, old.State);
        Assert.Equal([3L, 1, 4, 1, 5], Echo(core, old).Values); // the stale handle is served by its successor
        Assert.Equal(1, fresh.Statistics.Read().Success.Count);

        // A newer version retires this one: requests that hold it run on the newer one.
        var v2 = core.PrepareModel("m", "csharp-echo", null, """{"version":"2"}""");
        core.LoadModel(v2);
        core.Publish(v2);
        core.Retire(fresh, v2);
        Assert.Equal([3L, 1, 4, 1, 5], Echo(core, fresh).Values);
        Assert.Equal(1, v2.Statistics.Read().Success.Count);
        Assert.Same(v2, core.GetModel("m"));

        // Publishing in the place of a model that is gone, or beside a version that exists, is refused.
        var late = core.PrepareModel("m", "csharp-echo", null, """{"version":"1"}""", replacing: old);
        Assert.Equal(SmiStatus.NotFound, Assert.Throws<MlosException>(() => core.Publish(late, old)).Status);
        core.Discard(late);
        var twin = core.PrepareModel("m", "csharp-echo", null, """{"version":"3"}""");
        var first = core.PrepareModel("m", "csharp-echo", null, """{"version":"3"}""");
        core.Publish(first);
        Assert.Equal(SmiStatus.AlreadyExists, Assert.Throws<MlosException>(() => core.Publish(twin)).Status);
        core.Discard(twin);
        Assert.Equal(2, core.Models.Count);
    }

    [Fact]
    public void Guide_plugin_is_serialised_and_has_no_typed_infer()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(BuildTree.GuidePlugin, "guide");
        Assert.False(plugin.IsThreadSafe);
        Assert.False(plugin.HasTypedInfer);
        Assert.Equal("my-ml-plugin", plugin.NativeId);
        var model = core.RegisterModel("g", "guide", "./models/test_model.bin");
        core.LoadModel("g"); // load_model is NULL in the guide's plugin: nothing to do
        nuint* n = stackalloc nuint[1];
        var e = Assert.Throws<MlosException>(() => core.Infer(model, null, 0, null, n));
        Assert.Equal(SmiStatus.NotSupported, e.Status);
        Assert.Contains("has no typed infer", e.Message);
    }

    [Fact]
    public void Requests_on_an_unloaded_model_fail_cleanly()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("m", "csharp-echo", null);
        nuint* size = stackalloc nuint[1];
        var e = Assert.Throws<MlosException>(() => core.Inference(model, null, 0, null, size));
        Assert.Equal(SmiStatus.InvalidState, e.Status);
        core.LoadModel("m");
        core.UnloadModel("m");
        core.UnloadModel("m"); // idempotent
        e = Assert.Throws<MlosException>(() => core.Inference(model, null, 0, null, size));
        Assert.Contains("'m' is registered, not loaded", e.Message);
        core.UnregisterModel("m");
        Assert.Equal(ModelState.Unregistered, model.State);
        Assert.Equal(SmiStatus.NotFound, Assert.Throws<MlosException>(() => core.GetModel("m")).Status);
    }

    [Fact]
    public void Unregister_while_requests_run_lets_them_finish_first()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("slow", "csharp-echo", null, """{"config":{"delay_us":20000}}""");
        core.LoadModel("slow");
        int ok = 0, refused = 0, other = 0;
        var workers = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            byte[] buffer = new byte[8];
            for (int i = 0; i < 20; i++)
            {
                nuint size = 8;
                try
                {
                    fixed (byte* b = buffer) core.Inference(model, b, 8, b, &size);
                    Interlocked.Increment(ref ok);
                }
                catch (MlosException e) when (e.Status is SmiStatus.Busy or SmiStatus.InvalidState) { Interlocked.Increment(ref refused); }
                catch (Exception) { Interlocked.Increment(ref other); }
            }
        })).ToArray();
        foreach (var w in workers) w.Start();
        SpinWait.SpinUntil(() => Volatile.Read(ref ok) > 0, 10_000); // under way, with most of the calls still to come
        core.UnregisterModel("slow");
        foreach (var w in workers) w.Join();
        Assert.Equal(0, other);
        Assert.True(ok > 0, "some requests ran before the unregister");
        Assert.True(refused > 0, "requests after the unregister are refused");
        Assert.Equal(80, ok + refused);
    }

    [Fact]
    public void A_library_belongs_to_one_core_until_it_is_disposed()
    {
        var first = new MlosCore();
        first.LoadPlugin(BuildTree.EchoPlugin);
        using (var second = new MlosCore())
        {
            var e = Assert.Throws<MlosException>(() => second.LoadPlugin(BuildTree.EchoPlugin, "echo-2"));
            Assert.Equal(SmiStatus.AlreadyExists, e.Status);
            Assert.Contains("already loaded as 'csharp-echo'", e.Message);
        }
        first.Dispose();
        using var third = new MlosCore();
        third.LoadPlugin(BuildTree.EchoPlugin);
    }

    [Fact]
    public void Registry_json_has_the_mlos_shapes()
    {
        using var core = MlosCore.Create($$"""{"plugins":[{"path":"{{BuildTree.EchoPlugin}}","id":"echo"}]}""");
        core.RegisterModel("a", "echo", "/models/a.bin", """{"framework":"echo","version":"3"}""");
        core.LoadModel("a");

        using var plugins = JsonDocument.Parse(RegistryJson.Plugins(core));
        Assert.Equal("success", plugins.RootElement.GetProperty("status").GetString());
        Assert.Equal(1, plugins.RootElement.GetProperty("total").GetInt32());
        var p = plugins.RootElement.GetProperty("plugins")[0];
        Assert.Equal("echo", p.GetProperty("id").GetString());
        Assert.Equal("MLOS C# Echo Plugin", p.GetProperty("name").GetString());
        Assert.Equal(1, p.GetProperty("models").GetInt32());
        Assert.Equal("1.3.0", p.GetProperty("smi_version").GetString());

        using var models = JsonDocument.Parse(RegistryJson.Models(core));
        var m = models.RootElement.GetProperty("models")[0];
        Assert.Equal("a", m.GetProperty("id").GetString());
        Assert.Equal("echo", m.GetProperty("plugin_id").GetString());
        Assert.Equal("loaded", m.GetProperty("status").GetString());
        Assert.Equal("/models/a.bin", m.GetProperty("path").GetString());

        using var info = JsonDocument.Parse(RegistryJson.ModelInfo(core.GetModel("a")));
        Assert.Equal("BYTES", info.RootElement.GetProperty("inputs")[0].GetProperty("datatype").GetString());
        Assert.True(info.RootElement.GetProperty("plugin_info").GetProperty("loaded").GetBoolean());
    }

    [Fact]
    public void Plugin_errors_carry_the_plugins_own_message()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        var model = core.RegisterModel("m", "csharp-echo", null);
        core.LoadModel("m");
        var input = new byte[10];
        var output = new byte[2];
        nuint size = 2;
        MlosException? e = null;
        fixed (byte* i = input)
        fixed (byte* o = output)
        {
            try { core.Inference(model, i, 10, o, &size); }
            catch (MlosException x) { e = x; }
        }
        Assert.NotNull(e);
        Assert.Equal(SmiStatus.BufferTooSmall, e.Status);
        Assert.Contains("plugin 'csharp-echo' inference on model 'm' failed: SMI_ERROR_BUFFER_TOO_SMALL (-6): output buffer too small: 10 bytes needed, 2 given", e.Message);
        Assert.Equal((nuint)10, size);
    }

    [Fact]
    public void Registration_errors_leave_the_registry_unchanged()
    {
        using var core = new MlosCore();
        core.LoadPlugin(BuildTree.EchoPlugin);
        core.RegisterModel("m", "csharp-echo", null);
        Assert.Equal(SmiStatus.AlreadyExists, Assert.Throws<MlosException>(() => core.RegisterModel("m", "csharp-echo", null)).Status);
        Assert.Equal(SmiStatus.NotFound, Assert.Throws<MlosException>(() => core.RegisterModel("n", "nope", null)).Status);
        Assert.Equal(SmiStatus.InvalidParam, Assert.Throws<MlosException>(() => core.RegisterModel(new string('x', 300), "csharp-echo", null)).Status);
        Assert.Equal(SmiStatus.InvalidParam, Assert.Throws<MlosException>(() => core.RegisterModel("n", "csharp-echo", null, "{")).Status);
        Assert.Single(core.Models);
        Assert.Equal(SmiStatus.AlreadyExists, Assert.Throws<MlosException>(() => core.LoadPlugin(BuildTree.EchoPlugin)).Status);
        Assert.Single(core.Plugins);
    }
}
