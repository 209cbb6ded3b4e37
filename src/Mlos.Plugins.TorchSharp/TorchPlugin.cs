using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using TorchSharp;

namespace Mlos.Plugins.TorchSharp;

/// <summary>
/// TorchScript behind the SMI, through TorchSharp. libtorch is loaded at initialize (see
/// <see cref="TorchNative"/>); modules run concurrently under inference mode, so the plugin is
/// thread-safe.
/// </summary>
internal sealed class TorchPlugin : ISmiPlugin<TorchModel>
{
    private TorchConfig _config = TorchConfig.Defaults;

    public string PluginId => "torchsharp";
    public string Name => "MLOS TorchSharp Plugin";
    public string Version => "1.0.0";
    public string SupportedFrameworks => "pytorch,torchscript";
    public SmiCapabilities Capabilities => SmiCapabilities.ThreadSafe | SmiCapabilities.Batching | SmiCapabilities.Gpu;

    public void Initialize(string? config)
    {
        var parsed = TorchConfig.Parse(config, TorchConfig.Defaults);
        TorchNative.EnsureLoaded(parsed.LibtorchDir);
        TorchThreads.Apply(parsed.NumThreads, parsed.InterOpThreads);
        _config = parsed;
    }

    public TorchModel RegisterModel(SmiModelDescription model) => new(model, TorchConfig.Parse(model.Config, _config));

    public void LoadModel(TorchModel model, string? path) => model.Load(path);

    public void UnloadModel(TorchModel model) => model.Loaded.Release();

    public void UnregisterModel(TorchModel model) => model.Loaded.Release();

    public void Infer(TorchModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs) => TorchRunner.Infer(model, inputs, ref outputs);

    public string GetModelInfo(TorchModel model) => model.InfoJson();

    public SmiModelIo GetModelIo(TorchModel model) =>
        new(model.Inputs.Select(s => s.ToSmi()).ToArray(), model.Outputs.Select(s => s.ToSmi()).ToArray());

    /// <summary>CPU threads map to libtorch's intra-op pool (process-wide); a GPU request moves the model.</summary>
    public void AllocateResources(TorchModel model, ReadOnlySpan<SmiResourceReq> requirements)
    {
        foreach (var r in requirements)
        {
            switch (r.Type)
            {
                case SmiResourceType.CpuThreads:
                    torch.set_num_threads(Math.Max(1, CpuThreads.Fit(r.Amount)));
                    break;
                case SmiResourceType.Gpu:
                    var previous = model.Config;
                    model.Config = model.Config with { Device = $"cuda:{r.DeviceId}" };
                    try
                    {
                        if (model.Loaded.IsLoaded)
                        {
                            string path;
                            using (var lease = model.Loaded.Acquire()) path = lease.Value.Path;
                            model.Load(path);
                        }
                    }
                    catch
                    {
                        model.Config = previous;
                        throw;
                    }
                    break;
                default:
                    throw new SmiException(SmiStatus.NotSupported,
                        $"libtorch cannot cap {r.Type} for '{model.Name}'; CPU threads and a GPU device are supported");
            }
        }
    }
}
