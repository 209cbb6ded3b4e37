using Mlos.Smi.Abi;

namespace Mlos.Core.Plugins;

/// <summary>
/// A plugin loaded into this process (<see cref="PluginLibrary"/>): its function tables, copied
/// once, called directly. The 1.x blocks are read only when the plugin's SMI version says they
/// exist: reading one from an older plugin would read past the end of its descriptor.
/// </summary>
internal sealed unsafe class InProcessBoundary : PluginBoundary
{
    private readonly PluginLibrary _library;
    private readonly SmiPluginInterface _api;
    private readonly SmiPluginInterface11 _v11;
    private readonly SmiPluginInterface12 _v12;
    private readonly SmiPluginInterface13 _v13;

    public InProcessBoundary(PluginLibrary library)
    {
        _library = library;
        var descriptor = library.Descriptor;
        _api = descriptor->Interface;
        SmiVersion = descriptor->SmiVersion;
        uint minor = Smi.Abi.SmiVersion.GetMinor(SmiVersion);
        if (minor >= 1) _v11 = descriptor->V11;
        if (minor >= 2) _v12 = descriptor->V12;
        if (minor >= 3) _v13 = descriptor->V13;
        NativeId = PluginText.Read(descriptor->PluginId) ?? "";
        Entries = (_api.Cleanup != null ? PluginEntries.Cleanup : 0)
                  | (_api.UnregisterModel != null ? PluginEntries.UnregisterModel : 0)
                  | (_api.LoadModel != null ? PluginEntries.LoadModel : 0)
                  | (_api.UnloadModel != null ? PluginEntries.UnloadModel : 0)
                  | (_api.AllocateResources != null ? PluginEntries.AllocateResources : 0)
                  | (_api.DeallocateResources != null ? PluginEntries.DeallocateResources : 0)
                  | (_api.GetModelInfo != null ? PluginEntries.GetModelInfo : 0)
                  | (_api.GetSupportedFrameworks != null ? PluginEntries.GetSupportedFrameworks : 0)
                  | (_v11.GetModelIo != null ? PluginEntries.GetModelIo : 0)
                  | (_v11.Infer != null ? PluginEntries.Infer : 0)
                  | (_v11.GetLastError != null ? PluginEntries.GetLastError : 0)
                  | (_v12.InferWithDeadline != null ? PluginEntries.InferWithDeadline : 0)
                  | (_v13.InferSelected != null ? PluginEntries.InferSelected : 0);
    }

    public override uint SmiVersion { get; }
    public override string NativeId { get; }
    public override SmiCapabilities Capabilities => _v11.Capabilities;
    public override PluginEntries Entries { get; }

    public override (string? Name, string? Version, string? Frameworks) Describe() =>
        (PluginText.Read(_api.GetPluginName()), PluginText.Read(_api.GetPluginVersion()),
         _api.GetSupportedFrameworks != null ? PluginText.Read(_api.GetSupportedFrameworks()) : null);

    public override string? LastError() => _v11.GetLastError != null ? PluginText.Read(_v11.GetLastError()) : null;

    public override SmiStatus Initialize(byte* config) => _api.Initialize(config);
    public override SmiStatus Cleanup() => _api.Cleanup();
    public override SmiStatus RegisterModel(SmiModelMetadata* metadata, nint* handle) => _api.RegisterModel(metadata, handle);
    public override SmiStatus UnregisterModel(nint handle) => _api.UnregisterModel(handle);
    public override SmiStatus LoadModel(nint handle, byte* path) => _api.LoadModel(handle, path);
    public override SmiStatus UnloadModel(nint handle) => _api.UnloadModel(handle);
    public override SmiStatus AllocateResources(nint handle, SmiResourceReq* requirements, nuint count) => _api.AllocateResources(handle, requirements, count);
    public override SmiStatus DeallocateResources(nint handle) => _api.DeallocateResources(handle);
    public override SmiStatus GetModelInfo(nint handle, byte* json, nuint* size) => _api.GetModelInfo(handle, json, size);
    public override SmiStatus GetModelIo(nint handle, SmiTensorSpec* inputs, nuint* numInputs, SmiTensorSpec* outputs, nuint* numOutputs) =>
        _v11.GetModelIo(handle, inputs, numInputs, outputs, numOutputs);
    public override SmiStatus Inference(nint handle, void* input, nuint inputSize, void* output, nuint* outputSize) =>
        _api.Inference(handle, input, inputSize, output, outputSize);
    public override SmiStatus Infer(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs) =>
        _v11.Infer(handle, inputs, numInputs, outputs, numOutputs);
    public override SmiStatus InferWithDeadline(nint handle, SmiTensor* inputs, nuint numInputs, SmiTensor* outputs, nuint* numOutputs, ulong deadline) =>
        _v12.InferWithDeadline(handle, inputs, numInputs, outputs, numOutputs, deadline);
    public override SmiStatus InferSelected(nint handle, SmiTensor* inputs, nuint numInputs, byte** names, nuint numNames, SmiTensor* outputs, nuint* numOutputs, ulong deadline) =>
        _v13.InferSelected(handle, inputs, numInputs, names, numNames, outputs, numOutputs, deadline);

    public override void Close() => _library.Release();
}
