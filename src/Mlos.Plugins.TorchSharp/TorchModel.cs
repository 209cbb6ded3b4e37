using System.Text.Json;
using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;
using TorchSharp;

namespace Mlos.Plugins.TorchSharp;

/// <summary>A model input or output: a name, and a dtype and dims when known (Invalid / -1: any).</summary>
internal sealed unsafe class TorchSpec(string name, SmiDtype dtype, long[]? dims)
{
    public string Name { get; } = name;
    public byte* NativeName { get; } = Utf8.Intern(name);
    public SmiDtype Dtype { get; } = dtype;
    public long[]? Dims { get; } = dims;

    public SmiTensorSpec ToSmi()
    {
        var spec = new SmiTensorSpec { Name = NativeName, Dtype = Dtype, NDim = (uint)Math.Min(Dims?.Length ?? 0, SmiVersion.MaxDims) };
        Dims?.AsSpan(0, (int)spec.NDim).CopyTo(spec.Shape);
        return spec;
    }
}

/// <summary>A loaded TorchScript module (a handle of TorchSharp's shim) and what it was loaded as.</summary>
internal sealed record TorchModule(nint Handle, torch.Device Device, string Path, TorchSpec[] Inputs);

/// <summary>
/// A registered TorchScript model and, while loaded, its module. TorchScript files carry no
/// input specs: they come from the model config (<c>{"inputs":[{"name","datatype","shape"}],
/// "outputs":[…]}</c>) when given, else the names from the scripted forward signature.
/// </summary>
internal sealed class TorchModel
{
    private readonly TorchSpec[]? _declaredInputs;

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
    public TorchSpec[] Outputs { get; }
    public LoadedModel<TorchModule> Loaded { get; }

    /// <summary>The declared inputs, else those of the loaded module's signature, else none known.</summary>
    public TorchSpec[] Inputs
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
        var inputs = _declaredInputs ?? TorchSignature.InputNames(path)?.Select(n => new TorchSpec(n, SmiDtype.Invalid, null)).ToArray() ?? [];
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
            Specs(w, "inputs", Inputs);
            Specs(w, "outputs", Outputs);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    private static void Specs(Utf8JsonWriter w, string name, TorchSpec[] specs)
    {
        w.WriteStartArray(name);
        foreach (var s in specs)
        {
            w.WriteStartObject();
            w.WriteString("name", s.Name);
            if (s.Dtype != SmiDtype.Invalid) w.WriteString("datatype", SmiDtypes.Name(s.Dtype));
            if (s.Dims is { } dims)
            {
                w.WriteStartArray("shape");
                foreach (var d in dims) w.WriteNumberValue(d);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
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

    private static TorchSpec[]? SpecsFromConfig(string? config, string key)
    {
        if (string.IsNullOrWhiteSpace(config) || config.TrimStart()[0] != '{') return null;
        using var doc = JsonDocument.Parse(config);
        if (!doc.RootElement.TryGetProperty(key, out var list)) return null;
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
            return new TorchSpec(name, dtype, dims);
        }).ToArray();
    }
}
