using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using TorchSharp;

namespace Mlos.Plugins.TorchSharp;

/// <summary>A loaded TorchScript module (a handle of TorchSharp's shim) and what it was loaded as.</summary>
internal sealed record TorchModule(nint Handle, torch.Device Device, string Path, TensorSpec[] Inputs);

/// <summary>
/// A registered TorchScript model and, while loaded, its module. TorchScript files carry no
/// input specs: they come from the model config (<c>{"inputs":[{"name","datatype","shape"}],
/// "outputs":[…]}</c>) when given, else the names from the scripted forward signature.
/// </summary>
internal sealed class TorchModel
{
    private readonly TensorSpec[]? _declaredInputs;

    public TorchModel(SmiModelDescription description, TorchConfig config)
    {
        Description = description;
        Config = config;
        _declaredInputs = SpecsFromConfig(description.Config, "inputs");
        Outputs = SpecsFromConfig(description.Config, "outputs") ?? [];
        Loaded = new LoadedModel<TorchModule>(description.Name, m => TorchShim.DisposeModule(m.Handle));
    }

    public SmiModelDescription Description { get; }
    public string Name => Description.Name;
    public TorchConfig Config { get; set; }
    public TensorSpec[] Outputs { get; }
    public LoadedModel<TorchModule> Loaded { get; }

    /// <summary>The declared inputs, else those of the loaded module's signature, else none known.</summary>
    public TensorSpec[] Inputs
    {
        get
        {
            if (_declaredInputs is not null || !Loaded.IsLoaded) return _declaredInputs ?? [];
            using var lease = Loaded.Acquire();
            return lease.Value.Inputs;
        }
    }

    /// <summary>Loads the module onto the configured device and swaps it in.</summary>
    public void Load(string? path)
    {
        path = LoadedModel<TorchModule>.ModelFile(path, Description);
        var device = ResolveDevice();
        nint handle;
        try { handle = TorchShim.LoadModule(path, device); }
        catch (Exception e)
        {
            throw new SmiException(SmiStatus.InvalidParam, $"libtorch cannot load {path} as TorchScript: {e.Message.Trim()}");
        }
        var inputs = _declaredInputs ?? TorchSignature.InputNames(path)?.Select(n => new TensorSpec(n, SmiDtype.Invalid, null)).ToArray() ?? [];
        Loaded.Replace(new TorchModule(handle, device, path, inputs));
    }

    public string InfoJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("name", Name);
            w.WriteString("framework", "torchscript");
            w.WriteString("path", Description.Path);
            w.WriteBoolean("loaded", Loaded.IsLoaded);
            w.WriteString("device", Config.Device);
            TensorSpecJson.Write(w, "inputs", Inputs);
            TensorSpecJson.Write(w, "outputs", Outputs);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private torch.Device ResolveDevice()
    {
        if (Config.Device == "cpu") return torch.CPU;
        if (torch.cuda.is_available()) return new torch.Device(Config.Device);
        if (Config.AllowCpuFallback)
        {
            Console.Error.WriteLine($"[mlos-torch] {Config.Device} unavailable for '{Name}' (this libtorch has no usable CUDA); running on the CPU (allow_cpu_fallback)");
            return torch.CPU;
        }
        throw new SmiException(SmiStatus.NotSupported,
            $"device {Config.Device} requested for '{Name}' but CUDA is not available to libtorch here " +
            $"(loaded from {TorchNative.LoadedFrom}). Point \"libtorch_dir\" at a CUDA build of libtorch 2.10, use \"device\":\"cpu\", or set \"allow_cpu_fallback\":true");
    }

    private static TensorSpec[]? SpecsFromConfig(string? config, string key)
    {
        using var doc = PluginOptions.Open(config, "Torch");
        if (doc is null || !doc.RootElement.TryGetProperty(key, out var list)) return null;
        if (list.ValueKind != JsonValueKind.Array)
            throw new SmiException(SmiStatus.InvalidParam, $"model config: '{key}' must be an array of {{\"name\",\"datatype\",\"shape\"}}");
        return list.EnumerateArray().Select(e =>
        {
            var name = e.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()!
                : throw new SmiException(SmiStatus.InvalidParam, $"model config: every entry of '{key}' needs a \"name\"");
            var dtype = e.TryGetProperty("datatype", out var d) ? SmiDtypes.Parse(d.GetString()) : SmiDtype.Invalid;
            if (e.TryGetProperty("datatype", out _) && dtype == SmiDtype.Invalid)
                throw new SmiException(SmiStatus.InvalidParam, $"model config: {key} '{name}' has an unknown datatype {d.GetRawText()}");
            long[]? dims = e.TryGetProperty("shape", out var s) ? s.EnumerateArray().Select(x => x.GetInt64()).ToArray() : null;
            return new TensorSpec(name, dtype, dims);
        }).ToArray();
    }
}
