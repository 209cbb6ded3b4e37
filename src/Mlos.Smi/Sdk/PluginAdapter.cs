using System.Collections.Concurrent;
using Mlos.Smi.Abi;

namespace Mlos.Smi.Sdk;

/// <summary>The plugin as the non-generic thunks see it: every model is an opaque handle.</summary>
internal interface IPluginAdapter
{
    string Name { get; }
    string Version { get; }
    string SupportedFrameworks { get; }
    SmiCapabilities Capabilities { get; }
    void Initialize(string? config);
    void Cleanup();
    nint Register(SmiModelDescription model);
    void Unregister(nint handle);
    void Load(nint handle, string? path);
    void Unload(nint handle);
    int Inference(nint handle, ReadOnlySpan<byte> input, Span<byte> output);
    void Allocate(nint handle, ReadOnlySpan<SmiResourceReq> requirements);
    void Deallocate(nint handle);
    string Info(nint handle);
    SmiModelIo Io(nint handle);
    void Infer(nint handle, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs, SmiDeadline deadline);
}

/// <summary>
/// Maps handles to <typeparamref name="TModel"/> objects. Handles are small integers from a
/// table, not object addresses, so a stale or forged handle is an error message, not a crash.
/// </summary>
internal sealed class PluginAdapter<TModel>(ISmiPlugin<TModel> plugin) : IPluginAdapter where TModel : class
{
    private readonly ConcurrentDictionary<nint, TModel> _models = new();
    private long _nextHandle;

    public string Name => plugin.Name;
    public string Version => plugin.Version;
    public string SupportedFrameworks => plugin.SupportedFrameworks;
    public SmiCapabilities Capabilities => plugin.Capabilities;

    public void Initialize(string? config) => plugin.Initialize(config);

    public void Cleanup()
    {
        plugin.Cleanup();
        _models.Clear();
    }

    public nint Register(SmiModelDescription model)
    {
        var state = plugin.RegisterModel(model);
        var handle = (nint)Interlocked.Increment(ref _nextHandle);
        _models[handle] = state;
        return handle;
    }

    public void Unregister(nint handle)
    {
        plugin.UnregisterModel(Model(handle));
        _models.TryRemove(handle, out _);
    }

    public void Load(nint handle, string? path) => plugin.LoadModel(Model(handle), path);
    public void Unload(nint handle) => plugin.UnloadModel(Model(handle));
    public int Inference(nint handle, ReadOnlySpan<byte> input, Span<byte> output) => plugin.Inference(Model(handle), input, output);
    public void Allocate(nint handle, ReadOnlySpan<SmiResourceReq> requirements) => plugin.AllocateResources(Model(handle), requirements);
    public void Deallocate(nint handle) => plugin.DeallocateResources(Model(handle));
    public string Info(nint handle) => plugin.GetModelInfo(Model(handle));
    public SmiModelIo Io(nint handle) => plugin.GetModelIo(Model(handle));
    public void Infer(nint handle, ReadOnlySpan<SmiTensor> inputs, ref SmiOutputs outputs, SmiDeadline deadline)
    {
        if (deadline.IsSet) plugin.Infer(Model(handle), inputs, ref outputs, deadline);
        else plugin.Infer(Model(handle), inputs, ref outputs);
    }

    private TModel Model(nint handle) =>
        _models.TryGetValue(handle, out var model) ? model
        : throw new SmiException(SmiStatus.NotFound, $"unknown model handle 0x{handle:x}");
}
