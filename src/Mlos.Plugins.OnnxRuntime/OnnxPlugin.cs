using Microsoft.ML.OnnxRuntime;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Plugins.OnnxRuntime;

/// <summary>
/// ONNX Runtime behind the SMI. Sessions are created per model at load time with the plugin's
/// options (<see cref="OnnxConfig"/>) overridden by the model's config and resource requests.
/// ONNX Runtime sessions run concurrently, so the plugin declares itself thread-safe.
/// </summary>
internal sealed unsafe class OnnxPlugin : ISmiPlugin<OnnxModel>
{
    private OnnxConfig _config = OnnxConfig.Defaults;

    public string PluginId => "onnx-runtime";
    public string Name => "MLOS ONNX Runtime Plugin";
    public string Version => "1.0.0";
    public string SupportedFrameworks => "onnx,onnxruntime";
    public SmiCapabilities Capabilities => SmiCapabilities.ThreadSafe | SmiCapabilities.Batching | SmiCapabilities.Gpu;

    public void Initialize(string? config)
    {
        OnnxNative.EnsureResolver();
        var parsed = OnnxConfig.Parse(config, OnnxConfig.Defaults);
        // The plugin's thread settings size the pools every session shares; a model's own
        // settings (OwnThreadPools) give it pools of its own.
        OnnxThreadPools.Ensure(parsed.IntraOpThreads, parsed.InterOpThreads, parsed.AllowSpinning);
        parsed = parsed with { OwnThreadPools = false };
        // Fail at initialize, not at the first load, when the device cannot be used.
        parsed.CreateSessionOptions("(plugin)").Dispose();
        _config = parsed;
    }

    public OnnxModel RegisterModel(SmiModelDescription model) => new(model, OnnxConfig.Parse(model.Config, _config));


    public void LoadModel(OnnxModel model, string? path) => model.Load(path);

    public void UnloadModel(OnnxModel model) => model.Loaded.Release();

    public void UnregisterModel(OnnxModel model) => model.Loaded.Release();

    public void Infer(OnnxModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs) => Run(model, inputs, ref outputs, null);

    /// <summary>With a deadline, the run is stopped through its terminate flag when the deadline passes.</summary>
    public void Infer(OnnxModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs, SmiDeadline deadline)
    {
        deadline.ThrowIfPassed($"model '{model.Name}'");
        using var stop = new OnnxDeadline(deadline);
        try { Run(model, inputs, ref outputs, stop.Options); }
        catch (SmiException) when (stop.Fired) { throw SmiDeadline.Exceeded($"model '{model.Name}'"); }
    }

    private static void Run(OnnxModel model, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs, Microsoft.ML.OnnxRuntime.RunOptions? options)
    {
        using var lease = model.Loaded.Acquire();
        if (lease.Value.Native)
        {
            OnnxRunner.RunNative(model.Name, lease.Value, inputs, ref outputs, options);
            return;
        }
        var chosen = OnnxRunner.Chosen(lease.Value, ref outputs);
        var results = OnnxRunner.Run(model.Name, lease.Value, inputs, options, chosen);
        OnnxRunner.WriteOutputs(lease.Value, results, ref outputs, chosen);
    }

    public string GetModelInfo(OnnxModel model) => model.InfoJson();

    /// <summary>The inputs and outputs the ONNX file declares: known once the model is loaded.</summary>
    public SmiModelIo GetModelIo(OnnxModel model)
    {
        using var lease = model.Loaded.Acquire();
        return new SmiModelIo(lease.Value.Inputs.Select(s => s.ToSmi()).ToArray(), lease.Value.Outputs.Select(s => s.ToSmi()).ToArray());
    }

    /// <summary>CPU threads and GPU device/memory map to session options; the session is rebuilt if loaded.</summary>
    public void AllocateResources(OnnxModel model, ReadOnlySpan<SmiResourceReq> requirements)
    {
        var config = model.Config;
        foreach (var r in requirements)
        {
            config = r.Type switch
            {
                SmiResourceType.CpuThreads => config with { IntraOpThreads = Math.Max(1, CpuThreads.Fit(r.Amount)), OwnThreadPools = true },
                SmiResourceType.Gpu => config with { Device = $"cuda:{r.DeviceId}" },
                SmiResourceType.GpuMemory => config with { Device = $"cuda:{r.DeviceId}", GpuMemLimit = r.Amount },
                _ => throw new SmiException(SmiStatus.NotSupported,
                    $"ONNX Runtime cannot cap host memory ({r.Type} request for '{model.Name}'); CPU threads, GPU device and GPU memory are supported"),
            };
        }
        config.CreateSessionOptions(model.Name).Dispose(); // refuse an unusable device before changing anything
        var previous = model.Config;
        model.Config = config;
        try { model.Reload(); }
        catch
        {
            model.Config = previous;
            throw;
        }
    }

    public void DeallocateResources(OnnxModel model)
    {
        model.Config = OnnxConfig.Parse(model.Description.Config, _config);
        model.Reload();
    }
}
