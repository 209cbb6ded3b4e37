using Mlos.Smi.Sdk;

namespace Mlos.Plugins.TorchSharp;

/// <summary>
/// Plugin options (<c>initialize</c>) and per-model overrides (model config):
/// <c>{"device":"cpu"|"cuda:N","allow_cpu_fallback":bool,"num_threads":N,"inter_op_threads":N,"libtorch_dir":"/path"}</c>.
/// The thread counts are the plugin's (libtorch's pools are process-wide; see <see cref="TorchThreads"/>).
/// A string that is not a JSON object (the guide's harness passes "test-config") means defaults.
/// The device keys are <see cref="DeviceConfig"/>'s, read as in every framework plugin (<see cref="PluginOptions"/>).
/// </summary>
internal sealed record TorchConfig : DeviceConfig
{
    public int NumThreads { get; init; }
    public int InterOpThreads { get; init; }
    public string? LibtorchDir { get; init; }

    public static TorchConfig Defaults { get; } = new();

    public static TorchConfig Parse(string? json, TorchConfig basis) => DeviceConfig.Parse(json, "Torch", basis, static (c, o) => o.Name switch
    {
        "num_threads" => c with { NumThreads = o.Threads() },
        "inter_op_threads" => c with { InterOpThreads = o.Threads() },
        "libtorch_dir" => c with { LibtorchDir = o.Text("a folder path") },
        _ => c, // model-level keys (inputs, outputs) and free-form metadata
    });
}
