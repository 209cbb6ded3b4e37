using System.Runtime.InteropServices;
using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// Plugins loaded with deferred initialization (how the server loads what it finds in its plugin
/// folders): opened and listed at once, initialized by the first model registered with them,
/// exactly once however many registrations race.
/// </summary>
[Collection(PluginCollection.Name)]
public unsafe class LazyInitTests
{
    /// <summary>A core that runs plugins here: these tests count the fixture's calls in this process.</summary>
    private static MlosCore InProcess() => new() { DefaultIsolation = Mlos.Core.Isolation.PluginIsolation.None };

    private static string Fixture(string name) => BuildTree.FixturePlugin(name);

    /// <summary>The counters of c-tests/plugins/hostile_plugin.h, up to the ones read here.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct HostileStats
    {
        public long DeadCalls, Overlaps, Registered, Live, InferenceCalls, InferCalls, Allocs, Releases,
            DoubleReleases, BadReleases, UnloadedCalls, Hung, Registering, Initializes;
        public fixed byte Paths[2 * 512];
    }

    /// <summary>The hostile plugin's counters: dlopen of the same path hands back the library the core loaded.</summary>
    private static HostileStats Stats(string path)
    {
        var stats = (delegate* unmanaged<HostileStats*, void>)NativeLibrary.GetExport(NativeLibrary.Load(path), "hostile_stats");
        HostileStats s;
        stats(&s);
        return s;
    }

    private static string PluginStatus(MlosCore core, string id)
    {
        using var doc = JsonDocument.Parse(RegistryJson.Plugins(core));
        var p = doc.RootElement.GetProperty("plugins").EnumerateArray().Single(e => e.GetProperty("id").GetString() == id);
        Assert.Equal(p.GetProperty("status").GetString() == "initialized", p.GetProperty("initialized").GetBoolean());
        return p.GetProperty("status").GetString()!;
    }

    [Fact]
    public void Sixteen_racing_registrations_initialize_a_deferred_plugin_exactly_once()
    {
        var path = Fixture("libmlos_hostile_plugin.so");
        using var core = InProcess();
        long before = Stats(path).Initializes; // the library may have served an earlier test in this process
        var plugin = core.LoadPlugin(path, deferInitialize: true);
        Assert.False(plugin.IsInitialized);
        Assert.Equal("loaded", PluginStatus(core, "hostile"));
        Assert.Equal(before, Stats(path).Initializes);

        var errors = new Exception?[16];
        using var start = new Barrier(16);
        var threads = Enumerable.Range(0, 16).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            try { core.RegisterModel($"m{i}", "hostile", null); }
            catch (Exception e) { errors[i] = e; }
        })).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();

        Assert.All(errors, e => Assert.Null(e));
        Assert.Equal(16, core.Models.Count);
        Assert.Equal(before + 1, Stats(path).Initializes);
        Assert.True(plugin.IsInitialized);
        Assert.Equal("initialized", PluginStatus(core, "hostile"));
    }

    [Fact]
    public void An_eager_load_initializes_at_once()
    {
        var path = Fixture("libmlos_hostile_plugin.so");
        using var core = InProcess();
        long before = Stats(path).Initializes;
        var plugin = core.LoadPlugin(path);
        Assert.True(plugin.IsInitialized);
        Assert.Equal(before + 1, Stats(path).Initializes);
        Assert.Equal("initialized", PluginStatus(core, "hostile"));
    }

    [Fact]
    public void A_deferred_initialize_that_fails_fails_the_registration_and_is_tried_again()
    {
        using var core = new MlosCore();
        var plugin = core.LoadPlugin(Fixture("libmlos_bad_init_plugin.so"), id: "bad", deferInitialize: true);
        Assert.Equal("loaded", PluginStatus(core, "bad"));
        for (int i = 0; i < 2; i++)
        {
            var e = Assert.Throws<MlosException>(() => core.RegisterModel($"m{i}", "bad", null));
            Assert.Equal(SmiStatus.Runtime, e.Status);
            Assert.Contains("initialize", e.Message);
            Assert.False(plugin.IsInitialized);
        }
        Assert.Empty(core.Models);
        Assert.Equal("loaded", PluginStatus(core, "bad"));
    }
}
