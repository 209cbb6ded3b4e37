using System.Text.Json;
using Mlos.Tests;

namespace Mlos.Core.Tests;

/// <summary>
/// ONNX Runtime sessions run on one process-wide thread pool unless a model asks for its own
/// (issue #13: 1000 models used to mean 1000+ threads).
/// </summary>
[Collection(PluginCollection.Name)]
public class SharedThreadsTests
{
    private static int Threads() => Directory.GetDirectories("/proc/self/task").Length;

    private static string ThreadPool(Models.Model m)
    {
        using var info = JsonDocument.Parse(RegistryJson.ModelInfo(m));
        return info.RootElement.GetProperty("plugin_info").GetProperty("thread_pool").GetString()!;
    }

    [Fact]
    public void Onnx_models_share_one_thread_pool_unless_they_ask_for_their_own()
    {
        using var core = new MlosCore();
        core.LoadPlugin(Path.Combine(BuildTree.PluginDir, "libmlos_onnx_plugin.so"));
        var mlp = Path.Combine(BuildTree.Models("onnx"), "mlp.onnx");
        var first = core.RegisterModel("m0", "onnx-runtime", mlp);
        core.LoadModel("m0");
        Assert.Equal("shared", ThreadPool(first));
        int before = Threads();
        for (int i = 1; i <= 40; i++)
        {
            core.RegisterModel($"m{i}", "onnx-runtime", mlp);
            core.LoadModel($"m{i}");
        }
        int shared = Threads() - before;
        // 40 more sessions, no more threads (a little slack for the runtime's own helpers).
        Assert.True(shared <= 2, $"40 ONNX models added {shared} threads");

        // A model's own thread count gives it pools of its own, as before: threads appear.
        before = Threads();
        for (int i = 0; i < 4; i++)
        {
            var own = core.RegisterModel($"own{i}", "onnx-runtime", mlp, """{"config":{"intra_op_threads":2}}""");
            core.LoadModel($"own{i}");
            Assert.Equal("own", ThreadPool(own));
        }
        Assert.True(Threads() - before >= 4, $"4 models with their own pools added {Threads() - before} threads");
    }
}
