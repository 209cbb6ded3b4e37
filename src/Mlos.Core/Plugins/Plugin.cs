using Mlos.Smi.Abi;
using Mlos.Smi.Sdk;

namespace Mlos.Core.Plugins;

/// <summary>
/// A plugin the core has loaded and initialised: its function tables, copied once at load, and
/// the lock that serialises calls into it when it does not declare SMI_CAP_THREAD_SAFE.
/// Every call into plugin code goes through here.
/// </summary>
public sealed unsafe class Plugin
{
    private readonly SmiPluginInterface _api;
    private readonly SmiPluginInterface11 _v11;
    private readonly PluginGate? _serial;

    internal Plugin(string id, string path, PluginLibrary library, SmiPlugin* descriptor)
    {
        Id = id;
        Path = path;
        Library = library;
        _api = descriptor->Interface;
        SmiVersion = descriptor->SmiVersion;
        // The 1.1 block exists only in plugins built against SMI >= 1.1: reading it from an
        // older plugin would read past the end of its descriptor.
        if (Smi.Abi.SmiVersion.GetMinor(SmiVersion) >= 1) _v11 = descriptor->V11;
        NativeId = Utf8.Read(descriptor->PluginId) ?? "";
        ReadInfo();
        _serial = IsThreadSafe ? null : new PluginGate();
    }

    public string Id { get; }
    public string Path { get; }
    public string NativeId { get; }
    public string Name { get; private set; } = "";
    public string Version { get; private set; } = "";
    public string Frameworks { get; private set; } = "";
    public uint SmiVersion { get; }
    public SmiCapabilities Capabilities => _v11.Capabilities;
    public bool IsThreadSafe => Capabilities.HasFlag(SmiCapabilities.ThreadSafe);
    public bool HasTypedInfer => _v11.Infer != null;
    public bool HasModelIo => _v11.GetModelIo != null;
    internal PluginLibrary Library { get; }

    internal void Initialize(string? config)
    {
        byte* c = config is null ? null : Utf8.Allocate(config);
        try { Check(_api.Initialize(c), "initialize"); }
        finally { System.Runtime.InteropServices.NativeMemory.Free(c); }
        ReadInfo(); // a bridge (Python) knows its name only once it has loaded what it serves
    }

    private void ReadInfo()
    {
        Name = Utf8.Read(_api.GetPluginName()) ?? Id;
        Version = Utf8.Read(_api.GetPluginVersion()) ?? "";
        Frameworks = _api.GetSupportedFrameworks != null ? Utf8.Read(_api.GetSupportedFrameworks()) ?? "" : "";
    }

    /// <summary>Calls cleanup if the plugin has one; failures are reported, not thrown.</summary>
    internal string? Cleanup()
    {
        if (_api.Cleanup == null) return null;
        SmiStatus status;
        using (Serial()) status = _api.Cleanup();
        return status == SmiStatus.Success ? null : Failure(status, "cleanup").Message;
    }

    internal nint Register(SmiModelMetadata* metadata)
    {
        nint handle = 0;
        SmiStatus status;
        using (Serial()) status = _api.RegisterModel(metadata, &handle);
        Check(status, "register_model");
        return handle;
    }

    internal void Unregister(nint handle)
    {
        if (_api.UnregisterModel == null) return; // optional: nothing to forget
        SmiStatus status;
        using (Serial()) status = _api.UnregisterModel(handle);
        Check(status, "unregister_model");
    }

    internal void Load(nint handle, string? path)
    {
        if (_api.LoadModel == null) return; // optional: the plugin needs no load step
        byte* p = path is null ? null : Utf8.Allocate(path);
        try
        {
            SmiStatus status;
            using (Serial()) status = _api.LoadModel(handle, p);
            Check(status, "load_model");
        }
        finally { System.Runtime.InteropServices.NativeMemory.Free(p); }
    }

    internal void Unload(nint handle)
    {
        if (_api.UnloadModel == null) return;
        SmiStatus status;
        using (Serial()) status = _api.UnloadModel(handle);
        Check(status, "unload_model");
    }

    internal void Allocate(nint handle, SmiResourceReq* requirements, nuint count)
    {
        if (_api.AllocateResources == null)
            throw new MlosException(SmiStatus.NotSupported, $"plugin '{Id}' does not take resource requests");
        SmiStatus status;
        using (Serial()) status = _api.AllocateResources(handle, requirements, count);
        Check(status, "allocate_resources");
    }

    internal void Deallocate(nint handle)
    {
        if (_api.DeallocateResources == null) return; // optional: nothing was taken
        SmiStatus status;
        using (Serial()) status = _api.DeallocateResources(handle);
        Check(status, "deallocate_resources");
    }

    internal string? ModelInfo(nint handle)
    {
        if (_api.GetModelInfo == null) return null;
        nuint size = 4096;
        while (true)
        {
            var buffer = new byte[(int)size];
            SmiStatus status;
            fixed (byte* b = buffer)
            {
                nuint n = size;
                using (Serial()) status = _api.GetModelInfo(handle, b, &n);
                if (status == SmiStatus.Success)
                    return System.Text.Encoding.UTF8.GetString(buffer, 0, (int)Math.Max(n, 1) - 1);
                if ((status == SmiStatus.BufferTooSmall || status == SmiStatus.OutOfMemory) && n > size && n < 64u << 20) { size = n; continue; }
            }
            Check(status, "get_model_info");
        }
    }

    internal SmiModelIo? ModelIo(nint handle)
    {
        if (_v11.GetModelIo == null) return null;
        nuint nIn = 0, nOut = 0;
        SmiStatus status;
        using (Serial()) status = _v11.GetModelIo(handle, null, &nIn, null, &nOut);
        if (status != SmiStatus.Success && status != SmiStatus.BufferTooSmall) Check(status, "get_model_io");
        var inputs = new SmiTensorSpec[(int)nIn];
        var outputs = new SmiTensorSpec[(int)nOut];
        fixed (SmiTensorSpec* i = inputs)
        fixed (SmiTensorSpec* o = outputs)
        {
            using (Serial()) status = _v11.GetModelIo(handle, i, &nIn, o, &nOut);
            Check(status, "get_model_io");
        }
        return new SmiModelIo(inputs, outputs);
    }

    /// <summary>
    /// The lock that serialises calls into a plugin without SMI_CAP_THREAD_SAFE; null for a
    /// thread-safe one. Inference calls take it in <see cref="Models.Model.Run"/>.
    /// </summary>
    internal PluginGate? Gate => _serial;

    /// <summary>Untyped inference, caller's buffers straight to the plugin; the caller holds <see cref="Gate"/> if any.</summary>
    internal SmiStatus InferenceCall(nint handle, void* input, nuint inputSize, void* output, nuint* outputSize) =>
        _api.Inference(handle, input, inputSize, output, outputSize);

    /// <summary>Typed inference; the caller has checked <see cref="HasTypedInfer"/> and holds <see cref="Gate"/> if any.</summary>
    internal SmiStatus InferCall(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs) =>
        _v11.Infer(handle, inputs, numInputs, outputs, numOutputs);

    /// <summary>The exception for a failed call, with the plugin's own message when it keeps one.</summary>
    internal MlosException Failure(SmiStatus status, string entry)
    {
        string? detail = _v11.GetLastError != null ? Utf8.Read(_v11.GetLastError()) : null;
        var text = $"plugin '{Id}' {entry} failed: {MlosException.Describe(status)}";
        return new MlosException(status, detail is null ? text : $"{text}: {detail}");
    }

    private void Check(SmiStatus status, string entry)
    {
        if (status != SmiStatus.Success) throw Failure(status, entry);
    }

    /// <summary>Holds the plugin's gate for a block when it is not thread-safe.</summary>
    private SerialScope Serial() => new(_serial);

    private readonly ref struct SerialScope
    {
        private readonly PluginGate? _gate;

        public SerialScope(PluginGate? gate)
        {
            _gate = gate;
            gate?.Enter();
        }

        public void Dispose() => _gate?.Exit();
    }
}
